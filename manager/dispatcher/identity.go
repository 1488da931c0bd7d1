package dispatcher

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrRevoked ends the session of a node that was removed: its certificate
// is revoked, and the guard refuses its reconnects.
var ErrRevoked = errors.New("node removed from the cluster; its certificate is revoked")

// identify checks that the node a hello names is the one the peer's
// certificate names: an agent cannot open a session for another node and
// receive its tasks.
func (d *Dispatcher) identify(ctx context.Context, helloID string) error {
	if d.cfg.Identify == nil {
		return nil
	}
	id, err := d.cfg.Identify(ctx)
	if err != nil {
		return status.Errorf(codes.Unauthenticated, "session: %v", err)
	}
	if hello := helloID; hello != id {
		return status.Errorf(codes.PermissionDenied,
			"session: hello names node %q but the certificate is node %q; an agent opens a session for its own node only", hello, id)
	}
	return nil
}

// endRevoked ends the session of node id if the node was revoked.
func (d *Dispatcher) endRevoked(id string) {
	if d.cfg.State.Read().Revoked(id) {
		if s := d.sessions.get(id); s != nil {
			d.log.Warn("ending the session of a revoked node", "node_id", id)
			s.end(status.Error(codes.PermissionDenied, ErrRevoked.Error()))
		}
	}
}
