package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/membership"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

const (
	// statusTimeout bounds one ClusterStatus call.
	statusTimeout = 2 * time.Second
	// discoverMax caps the wait between rounds of asking for managers.
	discoverMax = 2 * time.Second
	// leaveTimeout bounds a graceful gossip leave.
	leaveTimeout = 2 * time.Second
	// healInterval is how often an agent that sees no manager alive in
	// gossip joins the managers again.
	healInterval = time.Second
)

// gossipMember is what the agent uses of its gossip membership.
type gossipMember interface {
	Members() []membership.Meta
	Addr() string
}

// GossipAddr is the address of the agent's gossip member, "" until it has
// joined the cluster's gossip (or when gossip is off).
func (a *Agent) GossipAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gossip == nil {
		return ""
	}
	return a.gossip.Addr()
}

// gossipManagers returns the gRPC addresses of the managers in gossip.
func gossipManagers(g gossipMember) []string {
	var out []string
	for _, m := range g.Members() {
		if m.Role == api.RoleManager && m.GRPCAddr != "" && !m.Leaving {
			out = append(out, m.GRPCAddr)
		}
	}
	return out
}

// runGossip joins the cluster's gossip (through the managers' gossip
// addresses, from any manager's cluster status) and stays in it until ctx
// ends. Failing to join is retried; the session does not wait for it.
func (a *Agent) runGossip(ctx context.Context) error {
	delay := reconnectMin
	for {
		m, err := a.joinGossip(ctx)
		if err == nil {
			return a.stayInGossip(ctx, m)
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, membership.ErrInvalidConfig) {
			return fmt.Errorf("gossip: %w", err)
		}
		a.log.Warn("joining gossip failed, will retry", "err", err)
		if !sleepCtx(ctx, jitter(delay)) {
			return nil
		}
		delay = min(2*delay, discoverMax)
	}
}

func (a *Agent) joinGossip(ctx context.Context) (*membership.Member, error) {
	// Gossip is encrypted with the cluster's keys, which come on the
	// session: join only once they are here (unless a key was given).
	if len(a.cfg.GossipKey) == 0 && !a.waitKeys(ctx) {
		return nil, ctx.Err()
	}
	seeds, err := a.discover(ctx)
	if err != nil {
		return nil, err
	}
	version, keys, _ := a.keys.get()
	key := a.cfg.GossipKey
	if version > 0 {
		key = nil
	} else {
		keys = nil
	}
	t := a.cfg.Gossip
	// stayInGossip closes the member (after a leave, if configured): the
	// end of ctx must not close it first.
	return membership.Start(context.WithoutCancel(ctx), membership.Config{
		NodeName: a.nodeID, BindAddr: a.cfg.GossipAddr, Join: seeds, Key: key, Keys: keys,
		ProbeInterval: t.ProbeInterval, ProbeTimeout: t.ProbeTimeout,
		SuspicionMult: t.SuspicionMult, GossipInterval: t.GossipInterval,
		Meta: membership.Meta{
			NodeID: a.nodeID, Hostname: a.cfg.Hostname, Role: api.RoleWorker, GRPCAddr: a.addr,
			NanoCPUs: a.cfg.Resources.NanoCPUs, MemoryBytes: a.cfg.Resources.MemoryBytes,
			Labels: a.cfg.Labels, KeysVersion: version,
		},
		Logger: a.cfg.Logger,
	})
}

// stayInGossip follows gossip events until ctx ends, then leaves (when the
// agent is configured to) or just stops answering.
func (a *Agent) stayInGossip(ctx context.Context, m *membership.Member) error {
	a.mu.Lock()
	a.gossip = m
	a.mu.Unlock()
	a.log.Info("joined gossip", "gossip_addr", m.Addr(), "members", len(m.Members()))
	healCtx, stopHeal := context.WithCancel(ctx)
	defer stopHeal()
	go a.healGossip(healCtx, m)
	keysChanged := a.syncKeys(m)
	for {
		select {
		case <-keysChanged:
			keysChanged = a.syncKeys(m)
		case ev, ok := <-m.Events():
			if !ok {
				return errors.New("gossip stopped")
			}
			if ev.Meta.Role == api.RoleManager {
				a.addManagers(ev.Meta.GRPCAddr)
			}
		case <-ctx.Done():
			a.mu.Lock()
			a.gossip = nil
			a.mu.Unlock()
			if a.announcesRestart() {
				// Gossip goes silent only after the leader heard of the
				// restart: it then ignores gossip declaring the node dead.
				select {
				case <-a.sessionsDone:
				case <-time.After(restartAckTimeout + time.Second):
				}
			}
			if a.cfg.LeaveOnStop {
				if err := m.Leave(leaveTimeout); err != nil {
					a.log.Warn("graceful gossip leave failed", "err", err)
				}
			}
			return m.Close()
		}
	}
}

// discover asks managers (as known, then the join list) for the cluster's
// status, a read any manager answers, and returns the managers' gossip
// addresses; it also learns their gRPC addresses and the leader.
func (a *Agent) discover(ctx context.Context) ([]string, error) {
	conns := newConnCache(a.clientTLS())
	defer conns.close()
	var errs []error
	for _, addr := range a.candidates() {
		st, err := clusterStatus(ctx, conns, addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var seeds []string
		for _, m := range st.GetManagers() {
			a.addManagers(m.GetAddr())
			if m.GetGossipAddr() != "" {
				seeds = append(seeds, m.GetGossipAddr())
			}
		}
		if st.GetLeaderAddr() != "" {
			a.mu.Lock()
			if a.leader == "" {
				a.leader = st.GetLeaderAddr()
			}
			a.mu.Unlock()
		}
		if len(seeds) == 0 {
			errs = append(errs, fmt.Errorf("manager %s lists no gossip address", addr))
			continue
		}
		return seeds, nil
	}
	return nil, fmt.Errorf("no manager gave its cluster's gossip addresses: %w", errors.Join(errs...))
}

func clusterStatus(ctx context.Context, conns *connCache, addr string) (*shoalpb.ClusterStatusResponse, error) {
	conn, err := conns.get(addr)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	st, err := shoalpb.NewControlClient(conn).ClusterStatus(cctx, &shoalpb.ClusterStatusRequest{Stale: true})
	if err != nil {
		return nil, fmt.Errorf("cluster status from %s: %w", addr, err)
	}
	return st, nil
}

// healGossip rejoins the managers whenever none of them is alive in this
// member's view, and after every new session. memberlist never probes a
// member it declared dead, so after a partition (a cut link restored) the
// managers may keep this node dead in gossip while its session is back:
// they would then not see it fail if it were cut again. A join exchanges
// full state, so this member learns it was declared dead and refutes it.
func (a *Agent) healGossip(ctx context.Context, m *membership.Member) {
	t := time.NewTicker(healInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if seesManager(m.Members()) {
				continue
			}
		case <-a.rejoin:
		}
		seeds, err := a.discover(ctx)
		if err != nil {
			a.log.Debug("no manager to rejoin gossip through yet", "err", err)
			continue
		}
		if n, err := m.Join(seeds); err != nil {
			a.log.Debug("rejoining gossip failed", "seeds", seeds, "err", err)
		} else {
			a.log.Info("rejoined gossip", "contacted", n)
		}
	}
}

func seesManager(members []membership.Meta) bool {
	for _, mm := range members {
		if mm.Role == api.RoleManager && !mm.Leaving {
			return true
		}
	}
	return false
}
