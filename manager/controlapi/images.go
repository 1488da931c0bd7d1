package controlapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// ImageResolver tells which manifest an image reference names now
// (internal/registry.Registries satisfies it, with the agents' rules for
// reaching registries).
type ImageResolver interface {
	Digest(ctx context.Context, image string) (string, error)
}

// defaultResolveTimeout bounds one resolution: it runs inside a write's
// leader timeout (7 s by default), before anything is committed.
const defaultResolveTimeout = 5 * time.Second

// ErrImageUnresolved: the image's registry did not say which digest the
// tag names, so the service is not written (tasks on different nodes
// would otherwise run whatever the tag names when each pulls).
var ErrImageUnresolved = errors.New("image digest not resolved")

// pinImage resolves spec's image tag to the digest every task of the
// service will run, unless noResolve (the tag is kept, and each agent pulls
// what it names when it pulls). A digest the spec already carries is kept
// when it is not stale: the image is unchanged (cur is the service's
// current spec on an update; a change of something else must not roll the
// service onto whatever the tag names now), or the digest was given with a
// new image (a rollback to the previous spec and its digest). A new image
// with the current digest, or no digest, is resolved. It runs before the
// write is proposed, never inside Raft's Apply.
func (s *Server) pinImage(ctx context.Context, spec, cur *api.ServiceSpec, noResolve bool) error {
	switch {
	case noResolve || strings.Contains(spec.Image, "@"):
		// A reference with a digest is pinned by itself.
		spec.ImageDigest = ""
		return nil
	case s.images == nil:
		return nil
	case spec.ImageDigest != "" && (cur == nil || spec.Image == cur.Image || spec.ImageDigest != cur.ImageDigest):
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, s.resolveTimeout)
	defer cancel()
	start := time.Now()
	d, err := s.images.Digest(rctx, spec.Image)
	if err != nil {
		return fmt.Errorf("%w: %w: %v; check that the registry serves it to the managers (the agents' registry flags apply to managers too), or pass --no-resolve-image to run the tag as it is",
			ErrImageUnresolved, raftstore.ErrNotFound, err)
	}
	s.log.Info("resolved image", "image", spec.Image, "digest", d, "duration", time.Since(start))
	spec.ImageDigest = d
	return nil
}
