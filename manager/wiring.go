package manager

import (
	"context"
	"os"
	"slices"
	"time"

	"google.golang.org/grpc"

	"github.com/shoal-sched/shoal/api"
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
	var member *membership.Member
	if m.gossipAddr() != "" {
		var err error
		if member, err = m.startGossip(ctx); err != nil {
			return nil, err
		}
		p.stop = func(crashed bool) error {
			if !crashed {
				// The leave is a courtesy that spares peers a failure
				// timeout; when they are stopping too nobody confirms it,
				// and the stop is no less clean for that.
				if err := member.Leave(gossipLeaveTimeout); err != nil {
					m.log.Warn("gossip leave not confirmed", "err", err)
				}
			}
			return member.Close()
		}
	}
	dcfg := dispatcher.Config{
		State: state, Applier: node, IsLeader: node.IsLeader,
		LeaderAddr: func() string {
			id, _ := node.Leader()
			rec, _ := state.Read().Manager(id)
			return rec.Addr
		},
		GracePeriod: m.cfg.NodeGracePeriod, ReconnectWindow: m.cfg.NodeReconnectWindow, Logger: m.cfg.Logger,
	}
	if member != nil {
		dcfg.Gossip = member.View
	}
	if !m.cfg.Plaintext {
		dcfg.Identify = sessionNodeID
	}
	go m.closeRevoked(ctx, state)
	disp := dispatcher.New(dcfg)
	shoalpb.RegisterDispatcherServer(gs, disp)
	orch := orchestrator.New(state, node, orchestrator.Options{Logger: m.cfg.Logger})
	alloc := allocator.New(state, node, m.cfg.Logger)
	p.duties = []duty{{name: "dispatcher", run: disp.Run}, {name: "orchestrator", run: orch.Run}, {name: "allocator", run: alloc.Run}}
	if member != nil {
		go func() {
			for ev := range member.Events() {
				disp.ObserveMember(ev)
			}
		}()
		go m.seedGossip(ctx, member, state)
	}
	return p, nil
}

// startGossip joins gossip as a manager member. It starts alone: the other
// managers' gossip addresses are in the state, which seedGossip follows.
func (m *Manager) startGossip(ctx context.Context) (*membership.Member, error) {
	host, err := os.Hostname()
	if err != nil {
		m.log.Warn("no hostname; gossip names this manager by its id", "err", err)
		host = m.id
	}
	g := m.cfg.Gossip
	// The member is stopped by parts.stop (with or without a leave), not
	// by the end of ctx, which would close it before it could leave.
	return membership.Start(context.WithoutCancel(ctx), membership.Config{
		NodeName: m.id, BindAddr: m.gossipAddr(), Key: m.gossipKey,
		ProbeInterval: g.ProbeInterval, ProbeTimeout: g.ProbeTimeout,
		SuspicionMult: g.SuspicionMult, GossipInterval: g.GossipInterval,
		Meta:   membership.Meta{NodeID: m.id, Hostname: host, Role: api.RoleManager, GRPCAddr: m.advertise},
		Logger: m.cfg.Logger,
	})
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
