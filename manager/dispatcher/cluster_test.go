package dispatcher_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// raftCluster is three real managers (Raft over TCP, gossip over UDP/TCP,
// all on loopback) and agents with fake runtimes that join them.
type raftCluster struct {
	t      testing.TB
	c      *managertest.Cluster
	agents []*testAgent
}

// startRaftCluster starts the managers and agents; configure, if given,
// adjusts each agent before it starts.
func startRaftCluster(t testing.TB, agents int, configure ...func(*testAgent)) *raftCluster {
	t.Helper()
	return startRaftClusterWith(t, managertest.Options{}, agents, configure...)
}

// startRaftClusterWith is startRaftCluster with the managers' options.
func startRaftClusterWith(t testing.TB, opts managertest.Options, agents int, configure ...func(*testAgent)) *raftCluster {
	t.Helper()
	c := managertest.StartCluster(t, 3, opts)
	rc := &raftCluster{t: t, c: c}
	join := []string{c.Addr(0), c.Addr(1), c.Addr(2)}
	for i := range agents {
		ta := newTestAgent(t, fmt.Sprintf("agent-%d", i), join)
		ta.creds = c.AgentCredentials(ta.dir)
		ta.gossip = true
		for _, f := range configure {
			f(ta)
		}
		ta.start()
		rc.agents = append(rc.agents, ta)
	}
	for _, ta := range rc.agents {
		rc.waitNode(ta.nodeID(), api.NodeReady)
	}
	return rc
}

// view reads the state of the current leader.
func (rc *raftCluster) view() (*raftstore.View, error) {
	l := rc.c.Leader()
	if l < 0 {
		return nil, fmt.Errorf("no leader")
	}
	m := rc.c.Manager(l)
	if m == nil || m.Raft() == nil {
		return nil, fmt.Errorf("leader %d stopped", l)
	}
	// A leader just elected may not have applied every committed entry
	// yet: read after a barrier, as a fresh read through the API does.
	ctx, cancel := context.WithTimeout(rc.t.Context(), 2*time.Second)
	defer cancel()
	if err := m.Raft().VerifyLeader(ctx); err != nil {
		return nil, fmt.Errorf("leader %d: %w", l, err)
	}
	return m.Raft().State().Read(), nil
}

func (rc *raftCluster) waitNode(id string, want api.NodeStatus) {
	rc.t.Helper()
	managertest.WaitFor(rc.t, 20*time.Second, func() error {
		v, err := rc.view()
		if err != nil {
			return err
		}
		st, err := nodeStatus(v, id)
		if err != nil {
			return err
		}
		if st != want {
			return fmt.Errorf("node %s is %s, want %s", id, st, want)
		}
		return nil
	})
}

func (rc *raftCluster) waitRunning(svc string, replicas uint64) []*api.Task {
	rc.t.Helper()
	var running []*api.Task
	managertest.WaitFor(rc.t, 30*time.Second, func() error {
		v, err := rc.view()
		if err != nil {
			return err
		}
		running, err = slotsRunning(v, svc, replicas)
		return err
	})
	return running
}

// waitRunningOff waits until every slot runs on a node other than off.
func (rc *raftCluster) waitRunningOff(svc string, replicas uint64, off string) []*api.Task {
	rc.t.Helper()
	var running []*api.Task
	managertest.WaitFor(rc.t, 30*time.Second, func() error {
		v, err := rc.view()
		if err != nil {
			return err
		}
		if running, err = slotsRunning(v, svc, replicas); err != nil {
			return err
		}
		if on := taskIDsOn(running, off); len(on) > 0 {
			return fmt.Errorf("tasks %v still count as running on node %s", on, off)
		}
		return nil
	})
	return running
}

// createService creates a replicated service through the control API of
// a running manager other than the leader when there is one (a follower
// forwards it).
func (rc *raftCluster) createService(name string, replicas uint64) string {
	rc.t.Helper()
	spec := &shoalpb.ServiceSpec{
		Name: name, Image: "img", Mode: "replicated", Replicas: replicas,
		StopGracePeriod: durationpb.New(100 * time.Millisecond),
	}
	var resp *shoalpb.ServiceWriteResponse
	managertest.WaitFor(rc.t, 20*time.Second, func() error {
		var err error
		via := -1
		for i := range rc.c.N() {
			if rc.c.Running(i) && (via < 0 || i != rc.c.Leader()) {
				via = i
			}
		}
		if via < 0 {
			return fmt.Errorf("no manager runs")
		}
		resp, err = rc.c.Client(via).CreateService(rc.t.Context(), &shoalpb.CreateServiceRequest{Spec: spec})
		return err
	})
	return resp.GetService().GetId()
}

func taskIDsOn(ts []*api.Task, node string) []string {
	var out []string
	for _, t := range ts {
		if t.NodeID == node {
			out = append(out, t.ID)
		}
	}
	sort.Strings(out)
	return out
}

// TestClusterAgentFailure: an agent dies; its node goes down and its
// replicas are replaced on the survivors; it comes back, is ready again,
// removes its stale tasks, and nothing runs twice.
func TestClusterAgentFailure(t *testing.T) {
	rc := startRaftCluster(t, 3)
	svc := rc.createService("web", 6)
	before := rc.waitRunning(svc, 6)
	victim := rc.agents[0]
	id := victim.nodeID()
	stale := taskIDsOn(before, id)
	if len(stale) == 0 {
		t.Fatalf("no replica placed on %s: %v", victim.name, before)
	}
	victim.kill()
	rc.waitNode(id, api.NodeDown)
	rc.waitRunningOff(svc, 6, id)

	victim.start()
	rc.waitNode(id, api.NodeReady)
	managertest.WaitFor(t, 20*time.Second, func() error {
		for _, tid := range stale {
			if victim.rt.Task(tid) != nil {
				return fmt.Errorf("stale task %s still has a container", tid)
			}
		}
		return containersRunning(rc.agents, 6)
	})
	for _, tid := range stale {
		if n := victim.rt.Starts(tid); n != 1 {
			t.Errorf("stale task %s started %d times, want 1", tid, n)
		}
	}
}

// TestClusterLeaderFailure: the leading manager dies; agents find the new
// leader without restarting any task, and new work still reaches them.
func TestClusterLeaderFailure(t *testing.T) {
	rc := startRaftCluster(t, 3)
	svc := rc.createService("web", 6)
	before := rc.waitRunning(svc, 6)
	old := rc.c.Leader()
	rc.c.Kill(old)
	managertest.WaitFor(t, 20*time.Second, func() error {
		if l := rc.c.Leader(); l < 0 || l == old {
			return fmt.Errorf("no new leader yet")
		}
		return nil
	})
	// New work proves the agents have sessions with the new leader.
	svc2 := rc.createService("api", 3)
	rc.waitRunning(svc2, 3)
	after := rc.waitRunning(svc, 6)
	if fmt.Sprint(runningIDs(before)) != fmt.Sprint(runningIDs(after)) {
		t.Errorf("running tasks changed across a leader change: %v -> %v", runningIDs(before), runningIDs(after))
	}
	for _, ta := range rc.agents {
		for _, tk := range before {
			if n := ta.rt.Starts(tk.ID); n > 1 {
				t.Errorf("task %s started %d times on %s", tk.ID, n, ta.name)
			}
		}
		if v, err := rc.view(); err == nil {
			if n := v.Node(ta.nodeID()); n.Status != api.NodeReady {
				t.Errorf("node %s is %s after the leader change: %s", ta.name, n.Status, n.StatusMessage)
			}
		}
	}
}

// TestClusterAgentRestart: an agent restarts (same data dir, containers
// left running); it adopts its tasks instead of starting them again.
func TestClusterAgentRestart(t *testing.T) {
	rc := startRaftCluster(t, 2)
	svc := rc.createService("web", 4)
	before := rc.waitRunning(svc, 4)
	ta := rc.agents[1]
	ta.kill()
	ta.start()
	managertest.WaitFor(t, 20*time.Second, func() error { return containersRunning(rc.agents, 4) })
	after := rc.waitRunning(svc, 4)
	if fmt.Sprint(runningIDs(before)) != fmt.Sprint(runningIDs(after)) {
		t.Errorf("running tasks changed across an agent restart: %v -> %v", runningIDs(before), runningIDs(after))
	}
	for _, tk := range after {
		if n := ta.rt.Starts(tk.ID); n > 1 {
			t.Errorf("task %s started %d times", tk.ID, n)
		}
	}
}

// TestClusterAgentLeaves: an agent that stops on purpose leaves gossip
// first; the leader marks its node down at once, saying it left.
func TestClusterAgentLeaves(t *testing.T) {
	rc := startRaftCluster(t, 2, func(ta *testAgent) { ta.leave = true })
	ta := rc.agents[1]
	id := ta.nodeID()
	managertest.WaitFor(t, 20*time.Second, func() error {
		if ta.gossipAddr() == "" {
			return fmt.Errorf("agent %s has not joined gossip", ta.name)
		}
		return nil
	})
	ta.kill()
	rc.waitNode(id, api.NodeDown)
	v, err := rc.view()
	if err != nil {
		t.Fatal(err)
	}
	if msg := v.Node(id).StatusMessage; !strings.Contains(msg, "left") {
		t.Errorf("down message %q does not say the node left (gossip leave not seen)", msg)
	}
}
