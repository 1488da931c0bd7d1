package manager

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/dispatcher"
	"github.com/shoal-sched/shoal/membership"
	"github.com/shoal-sched/shoal/raftstore"
)

// gossipRetryDelay is the pause before a failed gossip start is tried again.
const gossipRetryDelay = time.Second

// gossipRun is this manager's gossip member. Gossip is encrypted with the
// cluster's keys, which live in Raft: the member starts once the local
// state holds them (at once after a restart, after the first leader made
// them in a new cluster, after the join's replication on a new manager)
// and follows every change of them.
type gossipRun struct {
	m      *Manager
	member atomic.Pointer[membership.Member]
	cancel context.CancelFunc
	done   chan struct{}
}

// startGossipRun starts the member in the background.
func (m *Manager) startGossipRun(ctx context.Context, state *raftstore.State, disp *dispatcher.Dispatcher) *gossipRun {
	ctx, cancel := context.WithCancel(ctx)
	g := &gossipRun{m: m, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(g.done)
		g.run(ctx, state, disp)
	}()
	return g
}

// GossipView is this manager's gossip view: empty while its member has not
// started (it waits for the cluster's gossip keys) or when gossip is off.
func (m *Manager) GossipView() membership.View {
	m.mu.Lock()
	g := m.gossipRun
	m.mu.Unlock()
	if g == nil {
		return membership.View{}
	}
	return g.view()
}

// view is the member's gossip view (empty before it started).
func (g *gossipRun) view() membership.View {
	if mem := g.member.Load(); mem != nil {
		return mem.View()
	}
	return membership.View{}
}

func (g *gossipRun) run(ctx context.Context, state *raftstore.State, disp *dispatcher.Dispatcher) {
	var member *membership.Member
	for member == nil {
		ring, ok := waitKeyring(ctx, state)
		if !ok {
			return
		}
		var err error
		if member, err = g.m.startGossip(ctx, ring); err != nil {
			g.m.log.Error("starting gossip failed; retrying", "err", err)
			if !sleepCtx(ctx, gossipRetryDelay) {
				return
			}
		}
	}
	g.member.Store(member)
	// The events end when stop closes the member, after run returned.
	go func() {
		for ev := range member.Events() {
			disp.ObserveMember(ev)
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { g.m.seedGossip(ctx, member, state) })
	g.followKeys(ctx, member, state)
}

// followKeys installs every new version of the cluster's gossip keys.
func (g *gossipRun) followKeys(ctx context.Context, member *membership.Member, state *raftstore.State) {
	for {
		changed := state.Changed()
		if ring, ok := state.Read().GossipKeyring(); ok && ring.Version != member.LocalMeta().KeysVersion {
			if err := member.SetKeys(ring.Raw(), ring.Version); err != nil {
				g.m.log.Error("installing the cluster's gossip keys failed", "keys_version", ring.Version, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// stop ends the member; crashed skips the graceful leave.
func (g *gossipRun) stop(crashed bool) error {
	g.cancel()
	<-g.done
	member := g.member.Load()
	if member == nil {
		return nil
	}
	if !crashed {
		// The leave is a courtesy that spares peers a failure timeout;
		// when they are stopping too nobody confirms it, and the stop is
		// no less clean for that.
		if err := member.Leave(gossipLeaveTimeout); err != nil {
			g.m.log.Warn("gossip leave not confirmed", "err", err)
		}
	}
	return member.Close()
}

// waitKeyring waits until the state holds the cluster's gossip keys.
func waitKeyring(ctx context.Context, state *raftstore.State) (api.GossipKeyring, bool) {
	for {
		changed := state.Changed()
		if ring, ok := state.Read().GossipKeyring(); ok {
			return ring, true
		}
		select {
		case <-ctx.Done():
			return api.GossipKeyring{}, false
		case <-changed:
		}
	}
}

// startGossip joins gossip as a manager member. It starts alone: the other
// managers' gossip addresses are in the state, which seedGossip follows.
func (m *Manager) startGossip(ctx context.Context, ring api.GossipKeyring) (*membership.Member, error) {
	host, err := os.Hostname()
	if err != nil {
		m.log.Warn("no hostname; gossip names this manager by its id", "err", err)
		host = m.id
	}
	g := m.cfg.Gossip
	// The member is stopped by gossipRun.stop (with or without a leave),
	// not by the end of ctx, which would close it before it could leave.
	return membership.Start(context.WithoutCancel(ctx), membership.Config{
		NodeName: m.id, BindAddr: m.gossipAddr(), Keys: ring.Raw(),
		ProbeInterval: g.ProbeInterval, ProbeTimeout: g.ProbeTimeout,
		SuspicionMult: g.SuspicionMult, GossipInterval: g.GossipInterval,
		Meta: membership.Meta{
			NodeID: m.id, Hostname: host, Role: api.RoleManager, GRPCAddr: m.advertise, KeysVersion: ring.Version,
		},
		Logger: m.cfg.Logger,
	})
}

// sleepCtx waits d; it reports false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
