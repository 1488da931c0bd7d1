package dispatcher_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/raftstore"
)

// nodeWatch records every version of every node one manager's state
// applies, from when it starts: what a poll of the current state would
// miss (a node that went down and came back in between).
type nodeWatch struct {
	mu   sync.Mutex
	seen map[string][]*api.Node
}

func watchNodes(t *testing.T, state *raftstore.State) *nodeWatch {
	w := &nodeWatch{seen: map[string][]*api.Node{}}
	events, cancel := state.Subscribe(1 << 16)
	t.Cleanup(cancel)
	go func() {
		for batch := range events {
			w.mu.Lock()
			for _, ev := range batch {
				if ev.Node != nil {
					w.seen[ev.Node.ID] = append(w.seen[ev.Node.ID], ev.Node)
				}
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// downs lists the down statuses recorded for node id.
func (w *nodeWatch) downs(id string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, n := range w.seen[id] {
		if n.Status == api.NodeDown {
			out = append(out, n.StatusMessage)
		}
	}
	return out
}

// follower returns a running manager other than the leader and skip.
func (rc *raftCluster) follower(skip int) int {
	for i := range rc.c.N() {
		if i != skip && i != rc.c.Leader() && rc.c.Running(i) {
			return i
		}
	}
	rc.t.Fatal("no running follower")
	return -1
}

// waitNewLeader waits until a manager other than old leads.
func (rc *raftCluster) waitNewLeader(old int) {
	rc.t.Helper()
	managertest.WaitFor(rc.t, 20*time.Second, func() error {
		if l := rc.c.Leader(); l < 0 || l == old {
			return fmt.Errorf("no new leader yet")
		}
		return nil
	})
}

// checkUntouched fails the test if any task of before is no longer among
// the running ones, or was started more than once.
func checkUntouched(t *testing.T, agents []*testAgent, before, after []*api.Task) {
	t.Helper()
	if fmt.Sprint(runningIDs(before)) != fmt.Sprint(runningIDs(after)) {
		t.Errorf("running tasks changed: %v -> %v", runningIDs(before), runningIDs(after))
	}
	for _, ta := range agents {
		for _, tk := range before {
			if n := ta.rt.Starts(tk.ID); n > 1 {
				t.Errorf("task %s started %d times on %s", tk.ID, n, ta.name)
			}
		}
	}
}

// everyAgentGetsWork creates a service of one replica per agent and waits
// until each agent runs one: proof that every agent has a session with the
// leader.
func (rc *raftCluster) everyAgentGetsWork(name string) {
	rc.t.Helper()
	svc := rc.createService(name, uint64(len(rc.agents)))
	rc.waitRunning(svc, uint64(len(rc.agents)))
	managertest.WaitFor(rc.t, 20*time.Second, func() error {
		for _, ta := range rc.agents {
			found := false
			for _, id := range ta.rt.Running() {
				if tk := ta.rt.Task(id); tk != nil && tk.ServiceID == svc {
					found = true
				}
			}
			if !found {
				return fmt.Errorf("agent %s runs no replica of %s", ta.name, name)
			}
		}
		return nil
	})
}

// TestClusterLeaderCut: every agent reaches the leader through a link that
// is then cut (the connections stay open and pass nothing: no error, no
// close), and the leader dies. The agents hear no answer to their
// heartbeats, give up on the old leader within their receive deadline, find
// the new one, and no node goes down and no task is stopped or started.
// Without a receive deadline they would wait on the dead stream and every
// node would go down when the new leader's reconnect window ran out.
func TestClusterLeaderCut(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{NoGossip: true})
	rc := &raftCluster{t: t, c: c}
	old := c.Leader()
	link := newBlackhole(t, c.Addr(old))
	join := []string{link.addr()} // the agents come to the leader through the link first
	for i := range c.N() {
		if i != old {
			join = append(join, c.Addr(i))
		}
	}
	for i := range 3 {
		ta := newTestAgent(t, fmt.Sprintf("agent-%d", i), join)
		ta.creds = c.AgentCredentials(ta.dir)
		ta.start()
		rc.agents = append(rc.agents, ta)
	}
	for _, ta := range rc.agents {
		rc.waitNode(ta.nodeID(), api.NodeReady)
	}
	svc := rc.createService("web", 6)
	before := rc.waitRunning(svc, 6)
	watch := watchNodes(t, c.Manager(rc.follower(old)).Raft().State())

	link.freeze()
	c.Kill(old)
	rc.waitNewLeader(old)
	rc.everyAgentGetsWork("api")
	after := rc.waitRunning(svc, 6)
	checkUntouched(t, rc.agents, before, after)
	for _, ta := range rc.agents {
		if d := watch.downs(ta.nodeID()); len(d) > 0 {
			t.Errorf("node %s went down across the leader change: %v", ta.name, d)
		}
	}
}

// TestClusterPlannedRestart: an agent stops on purpose (as on SIGTERM) and
// says it will be back within its hold. Its node is restarting, keeps its
// tasks, and gossip declaring it dead changes nothing; the leader dies
// meanwhile and the new one honours the hold. The agent comes back: the
// node is ready, the same tasks run in the same containers, nothing was
// started twice and no task was added.
func TestClusterPlannedRestart(t *testing.T) {
	rc := startRaftCluster(t, 3, func(ta *testAgent) { ta.hold = 30 * time.Second })
	svc := rc.createService("web", 6)
	before := rc.waitRunning(svc, 6)
	victim := rc.agents[0]
	id := victim.nodeID()
	if len(taskIDsOn(before, id)) == 0 {
		t.Fatalf("no replica placed on %s: %v", victim.name, before)
	}
	old := rc.c.Leader()
	watch := watchNodes(t, rc.c.Manager(rc.follower(old)).Raft().State())

	victim.kill()
	rc.waitNode(id, api.NodeRestarting)
	rc.c.Kill(old)
	rc.waitNewLeader(old)
	// Longer than the new leader's reconnect window and gossip's failure
	// detection: the hold alone keeps the node.
	holdsFor(t, dispatcherWindow+2*time.Second, func() error {
		v, err := rc.view()
		if err != nil {
			return nil // between leaders
		}
		if n := v.Node(id); n.Status != api.NodeRestarting {
			return fmt.Errorf("node is %s (%s) during its hold", n.Status, n.StatusMessage)
		}
		if ts := v.TasksByService(svc); len(ts) != 6 {
			return fmt.Errorf("service has %d tasks during the hold, want the same 6:%s", len(ts), describeTasks(ts))
		}
		return nil
	})

	victim.start()
	rc.waitNode(id, api.NodeReady)
	managertest.WaitFor(t, 20*time.Second, func() error { return containersRunning(rc.agents, 6) })
	after := rc.waitRunning(svc, 6)
	checkUntouched(t, rc.agents, before, after)
	for _, call := range victim.rt.Calls() {
		if call.Op == "stop" || call.Op == "remove" {
			t.Errorf("the restarted agent did %s %s", call.Op, call.Target)
		}
	}
	if d := watch.downs(id); len(d) > 0 {
		t.Errorf("the restarting node went down: %v", d)
	}
}

// describeTasks lists tasks one per line with what a failure needs to
// tell who made them and why they ended.
func describeTasks(ts []*api.Task) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "\n  %s slot %d attempt %d on %s created %s: desired %s, %s %q (at %s)", t.ID, t.Slot, t.Attempt,
			t.NodeID, t.CreatedAt.Format("15:04:05.000"), t.DesiredState, t.Status.State, t.Status.Message, t.Status.Timestamp.Format("15:04:05.000"))
	}
	return b.String()
}

// dispatcherWindow is the reconnect window the managers of these tests run
// with (the default).
const dispatcherWindow = 4 * time.Second

// TestClusterRestartHoldExpires: an agent that announced a restart does not
// come back within its hold: its node goes down when the hold passes (not
// before), saying so, and its tasks are replaced on the other nodes.
func TestClusterRestartHoldExpires(t *testing.T) {
	const hold = 2 * time.Second
	rc := startRaftCluster(t, 3, func(ta *testAgent) { ta.hold = hold })
	svc := rc.createService("web", 6)
	before := rc.waitRunning(svc, 6)
	victim := rc.agents[1]
	id := victim.nodeID()
	if len(taskIDsOn(before, id)) == 0 {
		t.Fatalf("no replica placed on %s: %v", victim.name, before)
	}
	victim.kill()
	rc.waitNode(id, api.NodeRestarting)
	v, err := rc.view()
	if err != nil {
		t.Fatal(err)
	}
	deadline := v.Node(id).RestartDeadline
	rc.waitNode(id, api.NodeDown)
	v, err = rc.view()
	if err != nil {
		t.Fatal(err)
	}
	n := v.Node(id)
	if !strings.Contains(n.StatusMessage, "restart hold") {
		t.Errorf("down message %q does not say the hold passed", n.StatusMessage)
	}
	if n.UpdatedAt.Before(deadline) {
		t.Errorf("node went down at %s, before its hold ended at %s", n.UpdatedAt, deadline)
	}
	rc.waitRunningOff(svc, 6, id)
}
