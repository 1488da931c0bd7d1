// Package registry is how shoal reaches image registries, the same way on
// agents (pulls) and managers (resolving a tag to the digest every task
// then runs): mirrors tried before each upstream, plain HTTP only for the
// registries listed as insecure, credentials from a docker-style config.
package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
)

// Options say how to reach registries.
type Options struct {
	// Mirrors lists, per registry host ("docker.io", "reg:5000"), mirror
	// endpoints ("mirror:5000", "https://mirror/v2") tried before it.
	Mirrors map[string][]string
	// Insecure are hosts (host or host:port) reached over plain HTTP;
	// every other registry is reached over HTTPS.
	Insecure []string
	// DockerConfig is a docker-style config.json with credentials
	// ("auths"); empty means none.
	DockerConfig string
}

// Registries is how one process reaches image registries.
type Registries struct {
	mirrors  map[string][]mirror
	insecure map[string]bool
	creds    map[string]credential
	client   *http.Client
}

type mirror struct {
	host string // host[:port]
	path string // API root, "/v2" unless the mirror URL says otherwise
}

type credential struct {
	username, secret string
}

// New checks opts and returns the registries they describe.
func New(opts Options) (*Registries, error) {
	r := &Registries{
		mirrors:  map[string][]mirror{},
		insecure: map[string]bool{},
		client:   &http.Client{Transport: docker.DefaultHTTPTransport(nil)},
	}
	for _, h := range opts.Insecure {
		if h == "" || strings.Contains(h, "/") {
			return nil, fmt.Errorf("insecure registry %q: want host or host:port", h)
		}
		r.insecure[h] = true
	}
	for upstream, list := range opts.Mirrors {
		if upstream == "" || strings.Contains(upstream, "/") {
			return nil, fmt.Errorf("mirror registry %q: want host or host:port", upstream)
		}
		for _, raw := range list {
			m, err := r.parseMirror(raw)
			if err != nil {
				return nil, fmt.Errorf("mirror %q of registry %q: %w", raw, upstream, err)
			}
			r.mirrors[upstream] = append(r.mirrors[upstream], m)
		}
	}
	if opts.DockerConfig != "" {
		creds, err := loadDockerConfig(opts.DockerConfig)
		if err != nil {
			return nil, err
		}
		r.creds = creds
	}
	return r, nil
}

// parseMirror reads "host[:port][/path]", optionally with an http:// or
// https:// scheme. Plain HTTP is only allowed for insecure registries.
func (r *Registries) parseMirror(raw string) (mirror, error) {
	s := raw
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return mirror{}, err
	}
	if u.Host == "" {
		return mirror{}, errors.New("no host")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return mirror{}, fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Scheme == "http" && !r.insecure[u.Host] {
		return mirror{}, fmt.Errorf("plain http needs %q listed as an insecure registry", u.Host)
	}
	p := strings.TrimSuffix(u.Path, "/")
	if p == "" {
		p = "/v2"
	}
	return mirror{host: u.Host, path: p}, nil
}

// Resolver returns a fresh resolver; each keeps its own auth tokens.
func (r *Registries) Resolver() remotes.Resolver { return r.resolver(r.credentials) }

// ResolverWith is a Resolver that answers registry (host[:port], as an
// image reference names it) with the given credential, and every other
// registry as Resolver does: a service's --with-registry-auth credential
// goes to its image's registry only.
func (r *Registries) ResolverWith(registry, username, password string) remotes.Resolver {
	want := registryKey(registry)
	return r.resolver(func(host string) (string, string, error) {
		if host == want {
			return username, password, nil
		}
		return r.credentials(host)
	})
}

func (r *Registries) resolver(creds func(string) (string, string, error)) remotes.Resolver {
	auth := docker.NewDockerAuthorizer(
		docker.WithAuthClient(r.client),
		docker.WithAuthCreds(creds),
	)
	return docker.NewResolver(docker.ResolverOptions{
		Hosts: func(host string) ([]docker.RegistryHost, error) { return r.hosts(host, auth), nil },
	})
}

// hosts lists where to fetch images named under host: its mirrors first,
// then the registry itself.
func (r *Registries) hosts(host string, auth docker.Authorizer) []docker.RegistryHost {
	var out []docker.RegistryHost
	for _, m := range r.mirrors[host] {
		out = append(out, r.registryHost(m.host, m.path, docker.HostCapabilityPull|docker.HostCapabilityResolve, auth))
	}
	upstream := host
	if host == "docker.io" {
		upstream = "registry-1.docker.io"
	}
	caps := docker.HostCapabilityPull | docker.HostCapabilityResolve | docker.HostCapabilityPush
	return append(out, r.registryHost(upstream, "/v2", caps, auth))
}

func (r *Registries) registryHost(host, path string, caps docker.HostCapabilities, auth docker.Authorizer) docker.RegistryHost {
	scheme := "https"
	if r.insecure[host] {
		scheme = "http"
	}
	return docker.RegistryHost{
		Client:       r.client,
		Authorizer:   auth,
		Host:         host,
		Scheme:       scheme,
		Path:         path,
		Capabilities: caps,
	}
}

// credentials answers the authorizer: an empty username with a secret
// means an identity (refresh) token.
func (r *Registries) credentials(host string) (string, string, error) {
	c := r.creds[host]
	return c.username, c.secret, nil
}

// dockerConfig is the part of ~/.docker/config.json this runtime reads.
// Credential helpers (credsStore, credHelpers) are not supported.
type dockerConfig struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
}

func loadDockerConfig(path string) (map[string]credential, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("docker config %q: %w", path, err)
	}
	var cfg dockerConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("docker config %q: %w", path, err)
	}
	creds := map[string]credential{}
	for key, a := range cfg.Auths {
		c := credential{username: a.Username, secret: a.Password}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("docker config %q: auth of %q is not base64: %w", path, key, err)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("docker config %q: auth of %q is not user:password", path, key)
			}
			c = credential{username: user, secret: pass}
		}
		if a.IdentityToken != "" {
			c = credential{secret: a.IdentityToken}
		}
		creds[registryKey(key)] = c
	}
	return creds, nil
}

// DockerConfigCredential reads the credential a docker-style config.json
// holds for registry (host[:port]); ok is false when it holds none.
func DockerConfigCredential(path, registry string) (username, password string, ok bool, err error) {
	creds, err := loadDockerConfig(path)
	if err != nil {
		return "", "", false, err
	}
	c, ok := creds[registryKey(registry)]
	if !ok || c.username == "" {
		return "", "", false, nil
	}
	return c.username, c.secret, true, nil
}

// registryKey turns a config.json key ("https://index.docker.io/v1/",
// "registry.example.com:5000") into the host the resolver asks about.
func registryKey(key string) string {
	k := key
	if i := strings.Index(k, "://"); i >= 0 {
		k = k[i+3:]
	}
	k, _, _ = strings.Cut(k, "/")
	switch k {
	case "index.docker.io", "docker.io":
		return "registry-1.docker.io"
	}
	return k
}

// ParseMirrors reads --registry-mirror values, as agents and managers take
// them: MIRROR (a mirror of Docker Hub) or REGISTRY=MIRROR.
func ParseMirrors(vals []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, v := range vals {
		reg, m, ok := strings.Cut(v, "=")
		if !ok {
			reg, m = "docker.io", v
		}
		if reg == "" || m == "" {
			return nil, fmt.Errorf("--registry-mirror %q: want MIRROR or REGISTRY=MIRROR", v)
		}
		out[reg] = append(out[reg], m)
	}
	return out, nil
}
