package manager

import (
	"context"
	"slices"
	"time"

	"google.golang.org/grpc"

	"github.com/shoal-sched/shoal/manager/allocator"
	"github.com/shoal-sched/shoal/manager/dispatcher"
	"github.com/shoal-sched/shoal/manager/orchestrator"
	"github.com/shoal-sched/shoal/membership"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

const (
	// gossipLeaveTimeout bounds the graceful gossip leave at a clean stop.
	gossipLeaveTimeout = time.Second
	// gossipSeedInterval is how often a manager checks that it gossips
	// with every recorded manager.
	gossipSeedInterval = time.Second
)

// parts are the components built on top of Raft and the control API:
// gossip membership, the dispatcher (served on every manager) and the
// leader duties (orchestrator, dispatcher leader work).
type parts struct {
	duties []duty
	// stop stops what runs outside the leader duties; crashed skips the
	// graceful gossip leave.
	stop func(crashed bool) error
}

// startParts starts gossip and builds the dispatcher and the orchestrator.
func (m *Manager) startParts(ctx context.Context, gs *grpc.Server, node *raftstore.Node) (*parts, error) {
	state := node.State()
	p := &parts{stop: func(bool) error { return nil }}
	dcfg := dispatcher.Config{
		State: state, Applier: node, IsLeader: node.IsLeader,
		LeaderAddr: func() string {
			id, _ := node.Leader()
			rec, _ := state.Read().Manager(id)
			return rec.Addr
		},
		GracePeriod: m.cfg.NodeGracePeriod, ReconnectWindow: m.cfg.NodeReconnectWindow, Logger: m.cfg.Logger,
		Metrics: m.metrics.disp,
	}
	// The gossip member starts later (it needs the keys in the state):
	// the dispatcher reads its view through g.
	var g *gossipRun
	if m.gossipAddr() != "" {
		dcfg.Gossip = func() membership.View { return g.view() }
	}
	if !m.cfg.Plaintext {
		dcfg.Identify = sessionNodeID
	}
	go m.closeRevoked(ctx, state)
	disp := dispatcher.New(dcfg)
	m.setDispatcher(disp)
	shoalpb.RegisterDispatcherServer(gs, disp)
	orch := orchestrator.New(state, node, orchestrator.Options{Logger: m.cfg.Logger, Metrics: m.metrics.orch})
	alloc := allocator.New(state, node, m.cfg.Logger)
	keys := &keyDuty{m: m, node: node}
	p.duties = []duty{{name: "dispatcher", run: disp.Run}, {name: "orchestrator", run: orch.Run}, {name: "gossip keys", run: keys.run},
		{name: "allocator", run: alloc.Run},
		{name: "autolock", run: func(ctx context.Context) error { return m.autolockDuty(ctx, node) }}}
	if m.gossipAddr() != "" {
		g = m.startGossipRun(ctx, state, disp)
		keys.gossip = g
		m.mu.Lock()
		m.gossipRun = g
		m.mu.Unlock()
		p.stop = g.stop
	}
	return p, nil
}

// seedGossip joins the gossip of every recorded manager that this member
// does not see yet (after a start, or after a partition heals).
func (m *Manager) seedGossip(ctx context.Context, member *membership.Member, state *raftstore.State) {
	t := time.NewTicker(gossipSeedInterval)
	defer t.Stop()
	for {
		var seen []string
		for _, meta := range member.Members() {
			seen = append(seen, meta.NodeID)
		}
		var seeds []string
		for _, rec := range state.Read().Managers() {
			if rec.ID != m.id && rec.GossipAddr != "" && !slices.Contains(seen, rec.ID) {
				seeds = append(seeds, rec.GossipAddr)
			}
		}
		if len(seeds) > 0 {
			if _, err := member.Join(seeds); err != nil {
				m.log.Debug("gossip join of recorded managers failed", "seeds", seeds, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// gossipAddr is this manager's gossip address ("" when gossip is off).
func (m *Manager) gossipAddr() string { return m.gossip }
