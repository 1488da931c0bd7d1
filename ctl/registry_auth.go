package ctl

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/distribution/reference"

	"github.com/shoal-sched/shoal/internal/registry"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// dockerConfigPath is where docker keeps the caller's registry logins:
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
func (a *App) dockerConfigPath() string {
	if d := a.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	return filepath.Join(a.Getenv("HOME"), ".docker", "config.json")
}

// registryAuthFor reads the caller's credential for image's registry
// (--with-registry-auth); nil when the docker config has none for it.
func (a *App) registryAuthFor(image string) (*shoalpb.RegistryAuth, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return nil, fmt.Errorf("--with-registry-auth: image %q: %w", image, err)
	}
	host := reference.Domain(named)
	path := a.dockerConfigPath()
	user, pass, ok, err := registry.DockerConfigCredential(path, host)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no docker login on this machine: no credential
	}
	if err != nil {
		return nil, fmt.Errorf("--with-registry-auth: %w", err)
	}
	if !ok {
		return nil, nil
	}
	return &shoalpb.RegistryAuth{Registry: host, Username: user, Password: pass}, nil
}

// requiredRegistryAuth is registryAuthFor for a single service: no
// credential for its registry is an error, since the flag asked for one.
func (a *App) requiredRegistryAuth(image string) (*shoalpb.RegistryAuth, error) {
	auth, err := a.registryAuthFor(image)
	if err == nil && auth == nil {
		named, _ := reference.ParseNormalizedNamed(image)
		err = fmt.Errorf("--with-registry-auth: %s has no login for registry %q (docker login %s)", a.dockerConfigPath(), reference.Domain(named), reference.Domain(named))
	}
	return auth, err
}
