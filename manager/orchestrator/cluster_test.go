package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// clusterTimeout bounds every wait on the Raft cluster.
const clusterTimeout = 30 * time.Second

// member is one manager of a test cluster: a Raft member on loopback and,
// while it leads, an orchestrator — wired as the manager wires them.
type member struct {
	id   string
	addr string
	node *raftstore.Node
	// stopDuty ends the leadership watch and any orchestrator it runs.
	stopDuty func()
}

// cluster is a Raft cluster of managers on loopback ports.
type cluster struct {
	tb      testing.TB
	members []*member
	log     *slog.Logger
}

// newCluster starts size members on loopback; with duty, each runs an
// orchestrator while it leads. heartbeat is the Raft heartbeat and election
// timeout (0: raftstore's LAN default).
func newCluster(tb testing.TB, size int, log *slog.Logger, duty bool, heartbeat time.Duration) *cluster {
	tb.Helper()
	c := &cluster{tb: tb, log: log}
	for i := range size {
		m := &member{id: fmt.Sprintf("m%d", i), addr: freeAddr(tb)}
		node, err := raftstore.Open(raftstore.Config{
			ID: m.id, DataDir: tb.TempDir(), RaftAddr: m.addr, Bootstrap: i == 0,
			HeartbeatTimeout: heartbeat, ElectionTimeout: heartbeat, LeaderLeaseTimeout: heartbeat / 2,
			CommitTimeout: 5 * time.Millisecond, Logger: log.With("member", m.id),
		})
		if err != nil {
			tb.Fatalf("open member %s: %v", m.id, err)
		}
		m.node = node
		c.members = append(c.members, m)
		tb.Cleanup(func() { c.crash(m) })
	}
	leader := c.leader()
	for _, m := range c.members[1:] {
		ctx, cancel := context.WithTimeout(tb.Context(), clusterTimeout)
		err := leader.node.AddVoter(ctx, m.id, m.addr)
		cancel()
		if err != nil {
			tb.Fatalf("add voter %s: %v", m.id, err)
		}
	}
	for _, m := range c.members {
		if duty {
			c.leaderDuty(m)
		}
	}
	return c
}

// freeAddr returns a loopback address with a port that was free a moment
// ago (Raft binds it itself).
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// leaderDuty runs an orchestrator on m for as long as m leads.
func (c *cluster) leaderDuty(m *member) {
	changes, cancelChanges := m.node.LeadershipChanges()
	ctx, cancel := context.WithCancel(c.tb.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var stop func()
		defer func() {
			if stop != nil {
				stop()
			}
		}()
		leading := m.node.IsLeader()
		for {
			switch {
			case leading && stop == nil:
				stop = c.runOrchestrator(ctx, m)
			case !leading && stop != nil:
				stop()
				stop = nil
			}
			select {
			case <-ctx.Done():
				return
			case l, ok := <-changes:
				if !ok {
					return
				}
				leading = l
			}
		}
	}()
	var once sync.Once
	m.stopDuty = func() {
		once.Do(func() {
			cancel()
			cancelChanges()
			<-done
		})
	}
}

func (c *cluster) runOrchestrator(parent context.Context, m *member) func() {
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	o := New(m.node.State(), m.node, Options{Logger: c.log.With("member", m.id)})
	go func() {
		defer close(done)
		if err := o.Run(ctx); err != nil && !errors.Is(err, raftstore.ErrNotLeader) {
			c.tb.Errorf("orchestrator on %s: %v", m.id, err)
		}
	}()
	return func() { cancel(); <-done }
}

// crash stops a member as a failure would: its orchestrator and Raft end.
func (c *cluster) crash(m *member) {
	if m.stopDuty != nil {
		m.stopDuty()
	}
	if m.node != nil {
		if err := m.node.Close(); err != nil {
			c.tb.Errorf("close member %s: %v", m.id, err)
		}
		m.node = nil
	}
}

// leader waits for a live member to lead.
func (c *cluster) leader() *member {
	c.tb.Helper()
	deadline := time.Now().Add(clusterTimeout)
	for time.Now().Before(deadline) {
		for _, m := range c.members {
			if m.node != nil && m.node.IsLeader() {
				return m
			}
		}
		time.Sleep(20 * time.Millisecond) // polling for an election
	}
	c.tb.Fatalf("no leader after %s", clusterTimeout)
	return nil
}

// apply commits cmd through the current leader, following leader changes.
func (c *cluster) apply(cmd raftstore.Command) raftstore.Response {
	c.tb.Helper()
	deadline := time.Now().Add(clusterTimeout)
	for {
		m := c.leader()
		ctx, cancel := context.WithTimeout(c.tb.Context(), clusterTimeout)
		resp, err := m.node.Apply(ctx, cmd)
		cancel()
		switch {
		case err == nil:
			return resp
		case (errors.Is(err, raftstore.ErrNotLeader) || errors.Is(err, raftstore.ErrNoLeader)) && time.Now().Before(deadline):
			continue
		}
		c.tb.Fatalf("apply %T: %v", cmd, err)
	}
}

// waitFor polls the leader's state until cond holds ("" then). Between
// polls the fake agents act on what they see.
func (c *cluster) waitFor(what string, agents bool, cond func(v *raftstore.View) string) *raftstore.View {
	c.tb.Helper()
	deadline := time.Now().Add(clusterTimeout)
	for {
		m := c.leader()
		v := m.node.State().Read()
		why := cond(v)
		if why == "" {
			return v
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("waiting for %s: still %s\n%s", what, why, dump(v))
		}
		if agents {
			for _, cmd := range agentReports(v, time.Now()) {
				c.apply(cmd)
			}
		}
		select {
		case <-m.node.State().Changed():
		case <-time.After(50 * time.Millisecond): // the leader may change
		}
	}
}

func (c *cluster) addWorkers(n int) {
	c.tb.Helper()
	for i := range n {
		id := fmt.Sprintf("w%d", i+1)
		c.apply(raftstore.UpsertNode{Node: &api.Node{
			ID: id, Hostname: id, Role: api.RoleWorker, Status: api.NodeReady,
			Resources: api.Resources{NanoCPUs: 4e9, MemoryBytes: 4 << 30},
		}})
	}
}

// TestClusterRolloutSurvivesLeaderLoss runs the orchestrator as the
// manager does, on a 3-member Raft cluster on loopback: the leader dies in
// the middle of a rolling update, a new leader's orchestrator finishes it,
// and every slot ends with exactly one running task, nothing made twice.
func TestClusterRolloutSurvivesLeaderLoss(t *testing.T) {
	// Short timeouts: the test is about what happens after a failover.
	c := newCluster(t, 3, testLogger(t), true, 300*time.Millisecond)
	c.addWorkers(3)
	svc := c.apply(raftstore.CreateService{Service: &api.Service{ID: "svc-web", Spec: replicated("web", rolloutReplicas)}}).Value.(*api.Service)
	runningAt := func(version uint64) func(v *raftstore.View) string {
		return func(v *raftstore.View) string {
			ts := live(v, svc.ID)
			n := count(ts, func(t *api.Task) bool { return t.Status.State == api.TaskRunning && t.SpecVersion == version })
			if len(ts) != rolloutReplicas || n != rolloutReplicas {
				return fmt.Sprintf("%d live, %d running at version %d", len(ts), n, version)
			}
			return ""
		}
	}
	c.waitFor("all replicas running", true, runningAt(svc.SpecVersion))

	spec := svc.Spec
	spec.Image = "busybox:2"
	spec.UpdateConfig = api.UpdateConfig{Parallelism: 1}
	svc = c.apply(raftstore.UpdateService{ID: svc.ID, Spec: spec, At: time.Now()}).Value.(*api.Service)
	// Let the first slot finish and the second start, then kill the leader.
	c.waitFor("one slot updated and the next in flight", true, func(v *raftstore.View) string {
		done, inflight := rolloutState(v, svc.ID, svc.SpecVersion)
		if len(done) < 1 || len(inflight) != 1 {
			return fmt.Sprintf("done %v, in flight %v", done, inflight)
		}
		return ""
	})
	c.crash(c.leader())

	v := c.waitFor("the rollout finished by the new leader", true, runningAt(svc.SpecVersion))
	for slot := uint64(1); slot <= rolloutReplicas; slot++ {
		n := count(v.TasksByService(svc.ID), func(t *api.Task) bool { return t.Slot == slot })
		if n != 2 {
			t.Fatalf("slot %d has %d tasks, want 2 (the old and the new)\n%s", slot, n, dump(v))
		}
	}
	// The surviving follower holds the same tasks.
	for _, m := range c.members {
		if m.node == nil || m.node.IsLeader() {
			continue
		}
		c.waitFor("the follower caught up", false, func(lv *raftstore.View) string {
			fv := m.node.State().Read()
			if len(fv.TasksByService(svc.ID)) != len(lv.TasksByService(svc.ID)) {
				return fmt.Sprintf("follower %s has %d tasks, leader %d", m.id, len(fv.TasksByService(svc.ID)), len(lv.TasksByService(svc.ID)))
			}
			return ""
		})
	}
}
