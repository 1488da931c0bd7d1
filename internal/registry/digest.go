package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// ErrNotFound is returned (wrapped) by Digest when the registry has no
// such image.
var ErrNotFound = errors.New("image not found in its registry")

// Digest asks image's registry (through its mirrors, with the same
// credentials as a pull) which manifest the reference names now, and
// returns its digest ("sha256:..."). A reference that already holds a
// digest is answered without asking.
func (r *Registries) Digest(ctx context.Context, image string) (string, error) {
	named, err := reference.ParseDockerRef(image)
	if err != nil {
		return "", fmt.Errorf("image name %q: %w", image, err)
	}
	if d, ok := named.(reference.Digested); ok {
		return d.Digest().String(), nil
	}
	_, desc, err := r.Resolver().Resolve(ctx, named.String())
	if errdefs.IsNotFound(err) {
		return "", fmt.Errorf("resolve image %q: %w: %w", named.String(), ErrNotFound, err)
	}
	if err != nil {
		return "", fmt.Errorf("resolve image %q: %w", named.String(), err)
	}
	return desc.Digest.String(), nil
}
