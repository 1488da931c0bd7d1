package manager

import (
	"context"

	"google.golang.org/grpc"

	"github.com/shoal-sched/shoal/raftstore"
)

// parts are the components built on top of Raft and the control API:
// gossip membership, the dispatcher (served on every manager) and the
// leader duties (orchestrators, dispatcher leader work).
type parts struct {
	duties []duty
	// stop stops what runs outside the leader duties; crashed skips the
	// graceful gossip leave.
	stop func(crashed bool) error
}

// startParts builds and starts the parts.
//
// WIRING: the membership, dispatcher and orchestrator packages are not
// merged into this branch yet. When they are, this function starts the
// gossip member (membership.Start with cfg.GossipAddr, cfg.GossipKey and
// cfg.Gossip, joining the gossip addresses of the recorded managers),
// registers dispatcher.New(...) on gs, feeds member events to
// Dispatcher.ObserveMember, and returns dispatcher.Run and
// orchestrator.New(...).Run as duties.
func (m *Manager) startParts(_ context.Context, _ *grpc.Server, _ *raftstore.Node, _ raftstore.Applier) (*parts, error) {
	return &parts{stop: func(bool) error { return nil }}, nil
}

// gossipAddr is this manager's gossip address as recorded in the state
// ("" while gossip is not running).
//
// WIRING: the address the membership member bound, once it is merged.
func (m *Manager) gossipAddr() string { return "" }
