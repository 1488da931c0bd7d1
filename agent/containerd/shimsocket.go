package containerd

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// shimSocketRoot is where containerd 1.6 puts the sockets of its shims,
// whatever its own state dir.
const shimSocketRoot = "/run/containerd/s"

// ShimSocket is the socket containerd 1.6 makes for the shim of container
// id in namespace, on the daemon listening at address:
// /run/containerd/s/sha256(address/namespace/id). The shim does not always
// remove it when it exits, so whoever removes the container removes it too.
func ShimSocket(address, namespace, id string) string {
	return fmt.Sprintf("%s/%x", shimSocketRoot, sha256.Sum256([]byte(filepath.Join(address, namespace, id))))
}

// removeShimSocket deletes the shim socket of a removed container.
func (r *Runtime) removeShimSocket(id string) error {
	err := os.Remove(ShimSocket(r.opts.Address, r.opts.Namespace, id))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove shim socket of %s: %w", id, err)
	}
	return nil
}
