// Package labregistry builds a tiny busybox image from the host's static
// busybox binary and serves it from an in-memory registry. No public
// registry can be reached from the labs and tests, so this is the image
// they run; agents pull it as they would pull from any private registry.
package labregistry

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DefaultBusybox is where Debian's busybox-static installs the binary.
const DefaultBusybox = "/bin/busybox"

// DefaultRepository is the repository and tag the busybox image is served as.
const DefaultRepository = "shoal/busybox:latest"

// applets get a symlink to /bin/busybox each; they are what the tests and
// the demo services call, plus the usual shell tools.
var applets = []string{
	"sh", "ash", "cat", "cut", "date", "dd", "echo", "env", "false", "grep",
	"head", "hostname", "id", "kill", "ls", "mkdir", "nc", "printf", "ps",
	"pwd", "rm", "sed", "seq", "sleep", "stat", "tail", "test", "touch",
	"top", "true", "wc", "wget", "whoami", "yes", "awk", "tr", "uname",
	"httpd", "mount", "free",
}

// epoch is the time written into the layer and config so that the same
// busybox binary always yields the same image digest.
var epoch = time.Unix(0, 0).UTC()

// Busybox returns a single-layer linux/amd64 image holding the static
// busybox at busyboxPath as /bin/busybox, with applet symlinks in /bin, a
// minimal /etc/passwd and /etc/group, and a world-writable /tmp.
func Busybox(busyboxPath string) (v1.Image, error) {
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("read busybox binary %q (install busybox-static): %w", busyboxPath, err)
	}
	layerTar, err := busyboxTar(bin)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("busybox layer: %w", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, MediaType: types.OCILayer})
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("busybox image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS = "linux"
	cfg.Architecture = "amd64"
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Cmd = []string{"sh"}
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("busybox image config: %w", err)
	}
	return img, nil
}

func busyboxTar(bin []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: epoch})
	}
	file := func(name string, mode int64, data []byte) error {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	steps := []func() error{
		func() error { return dir("bin/", 0o755) },
		func() error { return dir("etc/", 0o755) },
		func() error { return dir("root/", 0o700) },
		func() error { return dir("tmp/", 0o1777) },
		func() error { return file("bin/busybox", 0o755, bin) },
		func() error {
			return file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
		},
		func() error { return file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")) },
	}
	for _, a := range applets {
		steps = append(steps, func() error {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: epoch})
		})
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("busybox layer tar: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("busybox layer tar: %w", err)
	}
	return buf.Bytes(), nil
}
