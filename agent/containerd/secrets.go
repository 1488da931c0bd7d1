package containerd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/shoal-sched/shoal/api"
)

// DefaultSecretsRoot is where each task's tmpfs of secrets and configs is
// mounted on the host (one directory per namespace and task). It is in
// /run, a tmpfs itself on most hosts, and never under the agent's data dir.
const DefaultSecretsRoot = "/run/shoal/secrets"

// secretsTmpfsBytes bounds a task's tmpfs: room for the largest service's
// files (MaxSecretRefs of each kind, MaxSecretBytes each) is far more than
// any real task uses, so the bound is set from the files actually given.
const secretsTmpfsSlack = 64 << 10

func (r *Runtime) secretsDir(taskID string) string {
	return filepath.Join(r.opts.SecretsRoot, r.opts.Namespace, taskID)
}

// mountSecrets puts the task's files on a fresh tmpfs of their own, each
// with its owner and mode, and returns the read-only bind mounts that show
// them in the container. The data is never written anywhere but the tmpfs.
func (r *Runtime) mountSecrets(taskID string, files []api.SecretFile) ([]specs.Mount, error) {
	if len(files) == 0 {
		return nil, nil
	}
	dir := r.secretsDir(taskID)
	// A create that failed half-way left its tmpfs: start again.
	if err := r.unmountSecrets(taskID); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("task %s: secrets dir: %w", taskID, err)
	}
	size := secretsTmpfsSlack
	for _, f := range files {
		size += len(f.Data) + 4096
	}
	opts := "mode=0700,size=" + strconv.Itoa(size)
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return nil, fmt.Errorf("task %s: mount the secrets tmpfs on %s: %w", taskID, dir, err)
	}
	mounts := make([]specs.Mount, 0, len(files))
	for i, f := range files {
		src := filepath.Join(dir, strconv.Itoa(i))
		if err := writeSecretFile(src, f); err != nil {
			return nil, errors.Join(fmt.Errorf("task %s: secret file %s: %w", taskID, f.Path, err), r.unmountSecrets(taskID))
		}
		mounts = append(mounts, specs.Mount{Type: "bind", Source: src, Destination: f.Path,
			Options: []string{"rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"}})
	}
	return mounts, nil
}

func writeSecretFile(path string, f api.SecretFile) error {
	fd, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, werr := fd.Write(f.Data)
	if cerr := fd.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return werr
	}
	if err := os.Chown(path, int(f.UID), int(f.GID)); err != nil {
		return err
	}
	// Chmod after chown: chown clears the set-id bits.
	return os.Chmod(path, os.FileMode(f.Mode&0o777))
}

// unmountSecrets takes the task's tmpfs away (nothing to do if it has none).
func (r *Runtime) unmountSecrets(taskID string) error {
	dir := r.secretsDir(taskID)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for {
		err := unix.Unmount(dir, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not (or no longer) a mount point
		}
		if err != nil {
			return fmt.Errorf("task %s: unmount the secrets tmpfs %s: %w", taskID, dir, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("task %s: remove the secrets dir: %w", taskID, err)
	}
	return nil
}
