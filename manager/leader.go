package manager

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// dutyRestartDelay is the pause before a leader duty that failed is run
// again (while this manager still leads).
const dutyRestartDelay = time.Second

// duty is a component that runs only on the leader. Everything a duty
// needs it derives from the store, so a new leader picks up where the old
// one stopped. Every run of a duty starts after a barrier (runDuty): a new
// leader may not have applied its predecessor's last entries yet, and a
// manager that leads again lacks what the leaders in between committed.
type duty struct {
	name string
	run  func(ctx context.Context) error
}

// lead starts the leader duties when this manager becomes the leader and
// stops them (and waits for them) when it stops being the leader.
func (m *Manager) lead(ctx context.Context, node *raftstore.Node, duties []duty) {
	changes, release := node.LeadershipChanges()
	defer release()
	all := append([]duty{{name: "bookkeeping", run: func(ctx context.Context) error {
		return m.bookkeep(ctx, node)
	}}}, duties...)
	var stop func()
	set := func(leading bool) {
		switch {
		case leading && stop == nil:
			stop = m.startDuties(ctx, node, all)
		case !leading && stop != nil:
			stop()
			stop = nil
		}
	}
	// Leadership may have been won before the subscription started.
	set(node.IsLeader())
	for {
		select {
		case <-ctx.Done():
			set(false)
			return
		case leading, ok := <-changes:
			if !ok {
				set(false)
				return
			}
			set(leading)
		}
	}
}

// startDuties runs every duty under one context and returns the function
// that cancels them and waits until they have all returned.
func (m *Manager) startDuties(ctx context.Context, b barrier, duties []duty) (stop func()) {
	m.log.Info("leading: starting leader duties", "duties", len(duties))
	dctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, d := range duties {
		wg.Go(func() { m.runDuty(dctx, b, d) })
	}
	return func() {
		cancel()
		wg.Wait()
		m.log.Info("not leading: leader duties stopped")
	}
}

// barrier returns once the local state holds everything committed before
// the call, on the leader (*raftstore.Node's VerifyLeader).
type barrier interface {
	VerifyLeader(ctx context.Context) error
}

// runDuty runs d, each time after a barrier, until it returns nil or ctx
// ends; a failed barrier or duty is logged and tried again after a pause.
func (m *Manager) runDuty(ctx context.Context, b barrier, d duty) {
	for {
		err := b.VerifyLeader(ctx)
		if err != nil {
			err = fmt.Errorf("wait for the log to be applied: %w", err)
		} else {
			err = d.run(ctx)
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		m.log.Error("leader duty failed; restarting it", "duty", d.name, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(dutyRestartDelay):
		}
	}
}

// bookkeep runs once per leadership: it records the cluster's identity if
// it has none (the first leader of a new cluster), records this manager's
// addresses (in the Raft configuration too, when it advertises another
// Raft address than the one it bound), and forgets managers that are no
// longer in the Raft configuration (after --force-new-cluster). The barrier
// before it (runDuty) makes sure the state it compares has every committed
// entry.
func (m *Manager) bookkeep(ctx context.Context, node *raftstore.Node) error {
	v := node.State().Read()
	at := time.Now().UTC()
	var cmds []raftstore.Command
	if v.Cluster().ID == "" {
		cmds = append(cmds, raftstore.SetCluster{Cluster: api.ClusterInfo{ID: m.creds.Identity().ClusterID, CreatedAt: at}})
	}
	caCmd, err := m.bootstrapCA(v)
	if err != nil {
		return fmt.Errorf("bookkeeping: %w", err)
	}
	if caCmd != nil {
		cmds = append(cmds, caCmd)
	}
	self := m.record()
	if rec, ok := v.Manager(m.id); !ok || rec != self {
		cmds = append(cmds, raftstore.UpsertManager{Manager: self})
	}
	members, err := node.Members()
	if err != nil {
		return fmt.Errorf("bookkeeping: %w", err)
	}
	inConfig := map[string]bool{}
	for _, mem := range members {
		inConfig[mem.ID] = true
		// A member that bootstrapped the cluster is in the configuration
		// at its bound address; the others must dial the advertised one.
		if mem.ID == m.id && mem.RaftAddr != m.raftAdvertise {
			if err := node.AddVoter(ctx, m.id, m.raftAdvertise); err != nil {
				return fmt.Errorf("bookkeeping: advertise raft address: %w", err)
			}
		}
	}
	for _, rec := range v.Managers() {
		if !inConfig[rec.ID] {
			m.log.Info("forgetting manager no longer in the raft configuration", "old_manager_id", rec.ID)
			cmds = append(cmds, raftstore.RemoveManager{ID: rec.ID})
		}
	}
	for _, c := range cmds {
		if _, err := node.Apply(ctx, c); err != nil {
			return fmt.Errorf("bookkeeping: %w", err)
		}
	}
	if _, ok := node.State().Read().CA(); ok {
		return dropPendingCA(m.cfg.DataDir)
	}
	return nil
}

// record is this manager as it is recorded in the state.
func (m *Manager) record() api.Manager {
	return api.Manager{ID: m.id, RaftAddr: m.raftAdvertise, Addr: m.advertise, GossipAddr: m.gossipAddr()}
}
