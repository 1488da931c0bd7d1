package dispatcher_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/dispatcher"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/membership"
	"github.com/shoal-sched/shoal/raftstore"
)

const testGrace = 300 * time.Millisecond

func waitRunning(t *testing.T, s *single, svc string, replicas uint64) []*api.Task {
	t.Helper()
	var running []*api.Task
	managertest.WaitFor(t, 10*time.Second, func() error {
		var err error
		running, err = slotsRunning(s.state.Read(), svc, replicas)
		return err
	})
	return running
}

func waitNode(t *testing.T, s *single, id string, want api.NodeStatus) *api.Node {
	t.Helper()
	managertest.WaitFor(t, 10*time.Second, func() error {
		st, err := nodeStatus(s.state.Read(), id)
		if err != nil {
			return err
		}
		if st != want {
			return fmt.Errorf("node %s is %s, want %s", id, st, want)
		}
		return nil
	})
	return s.state.Read().Node(id)
}

// addReadyAgents starts n agents and waits until their nodes are ready.
func addReadyAgents(t *testing.T, s *single, n int) []*testAgent {
	t.Helper()
	agents := s.addAgents(n)
	for _, ta := range agents {
		waitNode(t, s, ta.nodeID(), api.NodeReady)
	}
	return agents
}

func TestReplicasRun(t *testing.T) {
	s := newSingle(t, testGrace)
	agents := addReadyAgents(t, s, 3)
	s.startOrchestrator()
	for _, ta := range agents {
		n := s.state.Read().Node(ta.nodeID())
		if n.Hostname != ta.name || n.Resources.NanoCPUs != 4e9 || n.Addr != ta.addr() {
			t.Errorf("node %s registered as %+v, want addr %s", ta.name, n, ta.addr())
		}
	}
	svc := s.createService("web", 6)
	running := waitRunning(t, s, svc, 6)
	managertest.WaitFor(t, 5*time.Second, func() error { return containersRunning(agents, 6) })
	perNode := map[string]int{}
	for _, tk := range running {
		perNode[tk.NodeID]++
		if tk.Status.ContainerID != tk.ID {
			t.Errorf("task %s: container id %q, want the task id", tk.ID, tk.Status.ContainerID)
		}
	}
	if len(perNode) != 3 {
		t.Errorf("tasks spread over %d nodes, want 3: %v", len(perNode), perNode)
	}
}

// TestAgentKilled kills an agent: its node goes down after the grace
// period, its tasks are replaced on the survivors; when it comes back its
// node is ready again, its stale tasks are removed and nothing runs twice.
func TestAgentKilled(t *testing.T) {
	s := newSingle(t, testGrace)
	agents := addReadyAgents(t, s, 3)
	s.startOrchestrator()
	svc := s.createService("web", 6)
	before := waitRunning(t, s, svc, 6)

	victim := agents[0]
	id := victim.nodeID()
	var stale []string
	for _, tk := range before {
		if tk.NodeID == id {
			stale = append(stale, tk.ID)
		}
	}
	if len(stale) == 0 {
		t.Fatalf("no task ran on %s", victim.name)
	}
	victim.kill()
	n := waitNode(t, s, id, api.NodeDown)
	if !strings.Contains(n.StatusMessage, "no session") {
		t.Errorf("down message %q does not say the session was lost", n.StatusMessage)
	}
	after := waitRunning(t, s, svc, 6)
	for _, tk := range after {
		if tk.NodeID == id {
			t.Fatalf("task %s still counted running on the down node", tk.ID)
		}
	}

	victim.start()
	waitNode(t, s, id, api.NodeReady)
	managertest.WaitFor(t, 10*time.Second, func() error {
		for _, tid := range stale {
			if victim.rt.Task(tid) != nil {
				return fmt.Errorf("stale task %s still has a container on %s", tid, victim.name)
			}
		}
		return containersRunning(agents, 6)
	})
	for _, tid := range stale {
		if got := victim.rt.Starts(tid); got != 1 {
			t.Errorf("stale task %s was started %d times, want 1", tid, got)
		}
	}
}

// TestAgentRestartAdopts restarts an agent within the grace period: its
// node never goes down and its running tasks are adopted, not restarted.
func TestAgentRestartAdopts(t *testing.T) {
	s := newSingle(t, 5*time.Second)
	agents := addReadyAgents(t, s, 2)
	s.startOrchestrator()
	svc := s.createService("web", 4)
	before := waitRunning(t, s, svc, 4)
	ta := agents[1]
	id := ta.nodeID()
	ta.kill()
	ta.start()
	if got := ta.nodeID(); got != id {
		t.Fatalf("restarted agent has node id %s, want %s", got, id)
	}
	managertest.WaitFor(t, 10*time.Second, func() error {
		if s.d.SessionCount() != 2 {
			return fmt.Errorf("%d sessions, want 2", s.d.SessionCount())
		}
		return nil
	})
	after := waitRunning(t, s, svc, 4)
	ids := func(ts []*api.Task) string {
		var out []string
		for _, t := range ts {
			out = append(out, t.ID)
		}
		return strings.Join(out, ",")
	}
	if ids(before) != ids(after) {
		t.Errorf("running tasks changed across an agent restart: %s -> %s", ids(before), ids(after))
	}
	for _, tk := range after {
		for _, a := range agents {
			if n := a.rt.Starts(tk.ID); n > 1 {
				t.Errorf("task %s started %d times on %s", tk.ID, n, a.name)
			}
		}
	}
	if st, _ := nodeStatus(s.state.Read(), id); st != api.NodeReady {
		t.Errorf("node went %s across a restart within the grace period", st)
	}
}

// TestGossipEvents feeds membership events: a failure takes the node down
// once its session is silent too; the agent, restarted, comes back ready and
// drops the tasks that were replaced meanwhile. A graceful leave is
// recorded as such. Events about unknown members change nothing.
func TestGossipEvents(t *testing.T) {
	s := newSingle(t, time.Minute) // only gossip may take nodes down here
	agents := addReadyAgents(t, s, 2)
	s.startOrchestrator()
	svc := s.createService("web", 4)
	before := waitRunning(t, s, svc, 4)
	ta := agents[0]
	id := ta.nodeID()

	// An earlier incarnation of the agent (another address) failing says
	// nothing of the one in session.
	s.d.ObserveMember(membership.Event{Type: membership.EventFail, Meta: membership.Meta{NodeID: id, GRPCAddr: "127.0.0.1:1"}})
	holdsFor(t, 300*time.Millisecond, func() error {
		if hasDown(nodeHistory(s, id)) {
			return errors.New("the failure of an earlier incarnation took the node down")
		}
		return nil
	})
	s.d.ObserveMember(membership.Event{Type: membership.EventFail, Meta: membership.Meta{NodeID: "stranger"}})
	// Gossip alone does not take down a node whose session keeps talking:
	// a starved agent misses probes but still sends heartbeats.
	fail := membership.Event{Type: membership.EventFail, Meta: membership.Meta{NodeID: id, Role: api.RoleWorker, GRPCAddr: ta.addr()}}
	s.d.ObserveMember(fail)
	holdsFor(t, 1500*time.Millisecond, func() error {
		if hasDown(nodeHistory(s, id)) {
			return errors.New("gossip took down a node whose session was alive")
		}
		return nil
	})
	// Once the session is gone too, the node is down at once (the grace
	// period here is a minute: only gossip can have done it).
	ta.kill()
	s.d.ObserveMember(fail)
	var downMsg string
	managertest.WaitFor(t, 5*time.Second, func() error {
		for _, ev := range nodeHistory(s, id) {
			if ev.Status == api.NodeDown {
				downMsg = ev.StatusMessage
				return nil
			}
		}
		return errors.New("node never went down")
	})
	if !strings.Contains(downMsg, "gossip") {
		t.Errorf("down message %q does not name gossip", downMsg)
	}
	if s.state.Read().Node("stranger") != nil {
		t.Error("an event about an unknown member created a node")
	}
	// The agent comes back: it reconnects and its node is ready again.
	ta.start()
	waitNode(t, s, id, api.NodeReady)
	waitRunning(t, s, svc, 4)
	managertest.WaitFor(t, 10*time.Second, func() error {
		for _, tk := range before {
			if tk.NodeID == id && ta.rt.Task(tk.ID) != nil {
				return fmt.Errorf("replaced task %s still has a container", tk.ID)
			}
		}
		return containersRunning(agents, 4)
	})

	s.d.ObserveMember(membership.Event{Type: membership.EventLeave, Meta: membership.Meta{NodeID: id, Leaving: true}})
	managertest.WaitFor(t, 5*time.Second, func() error {
		for _, ev := range nodeHistory(s, id) {
			if ev.Status == api.NodeDown && strings.Contains(ev.StatusMessage, "left") {
				return nil
			}
		}
		return errors.New("no down-because-it-left status was recorded")
	})
}

// holdsFor polls cond for d and fails the test as soon as it does not hold.
func holdsFor(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := cond(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// nodeHistory follows a node's statuses: the current one, plus any seen by
// a subscriber since the test began watching (see watchNodes).
func nodeHistory(s *single, id string) []*api.Node {
	s.histMu.Lock()
	defer s.histMu.Unlock()
	out := append([]*api.Node(nil), s.history[id]...)
	if n := s.state.Read().Node(id); n != nil {
		out = append(out, n)
	}
	return out
}

// TestReconnectWindow: nodes that were ready under an earlier leader get
// the reconnect window from when this dispatcher starts leading before
// they are declared down, not the (shorter) grace period.
func TestReconnectWindow(t *testing.T) {
	const window = 1500 * time.Millisecond
	s := newSingle(t, testGrace, func(c *dispatcher.Config) { c.ReconnectWindow = window })
	at := time.Now()
	for i := range 3 {
		n := &api.Node{ID: fmt.Sprintf("old-%d", i), Hostname: fmt.Sprintf("old-%d", i), Status: api.NodeReady, UpdatedAt: at}
		if _, err := s.apply.Apply(t.Context(), raftstore.UpsertNode{Node: n}); err != nil {
			t.Fatal(err)
		}
	}
	// The dispatcher leads since newSingle; none may be down before the
	// window has passed since then.
	managertest.WaitFor(t, 10*time.Second, func() error {
		for i := range 3 {
			if n := s.state.Read().Node(fmt.Sprintf("old-%d", i)); n.Status != api.NodeDown {
				return fmt.Errorf("node %s is %s", n.ID, n.Status)
			}
		}
		return nil
	})
	for i := range 3 {
		n := s.state.Read().Node(fmt.Sprintf("old-%d", i))
		if since := n.UpdatedAt.Sub(s.started); since < window {
			t.Errorf("node %s went down %s after the dispatcher started leading, inside its reconnect window", n.ID, since)
		}
		if !strings.Contains(n.StatusMessage, "reconnect window") {
			t.Errorf("node %s: down message %q does not explain", n.ID, n.StatusMessage)
		}
	}
}
