package dispatcher_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/dispatcher"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/membership"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func memberOf(ta *testAgent) membership.Meta {
	return membership.Meta{NodeID: ta.nodeID(), Hostname: ta.name, Role: api.RoleWorker, GRPCAddr: ta.addr()}
}

// TestTakeoverActsOnGossipView: a manager that followed saw, in gossip, a
// node leave and come back; when it becomes the leader (its leader duties
// start only then, as in a real manager) that node stays ready: no backlog
// of old events is replayed. A node its gossip view holds as failed, whose
// agent does not come back, goes down after the grace period, without
// waiting for the reconnect window; the others re-session and keep their
// tasks.
func TestTakeoverActsOnGossipView(t *testing.T) {
	var leader atomic.Int32 // 0: the first dispatcher, 1: the other, -1: none
	var addrs [2]string
	leaderAddr := func() string {
		if l := leader.Load(); l >= 0 {
			return addrs[l]
		}
		return ""
	}
	var view atomic.Pointer[membership.View]
	view.Store(&membership.View{})
	s := newSingle(t, testGrace, func(c *dispatcher.Config) {
		c.Gossip = func() membership.View { return *view.Load() }
	})
	addrs[0] = s.addr
	s.setLeadership(func() bool { return leader.Load() == 0 }, leaderAddr)
	other, otherAddr, lead := s.serveIdleDispatcher(func() bool { return leader.Load() == 1 }, leaderAddr)
	addrs[1] = otherAddr

	agents := addReadyAgents(t, s, 3)
	s.startOrchestrator()
	svc := s.createService("web", 6)
	before := waitRunning(t, s, svc, 6)
	x, live, dead := agents[0], agents[1], agents[2]

	// While following, the other manager's gossip saw x leave and rejoin.
	other.ObserveMember(membership.Event{Type: membership.EventLeave, Meta: membership.Meta{NodeID: x.nodeID(), GRPCAddr: x.addr(), Leaving: true}})
	other.ObserveMember(membership.Event{Type: membership.EventJoin, Meta: memberOf(x)})

	// No leader for a moment (an election); dead's host dies meanwhile.
	leader.Store(-1)
	managertest.WaitFor(t, 10*time.Second, func() error {
		if n := s.d.SessionCount(); n != 0 {
			return fmt.Errorf("the old leader still holds %d sessions", n)
		}
		return nil
	})
	deadMeta, deadID := memberOf(dead), dead.nodeID()
	dead.kill()
	view.Store(&membership.View{
		Alive: []membership.Meta{memberOf(x), memberOf(live)},
		Gone:  []membership.Departure{{Meta: deadMeta, At: time.Now()}},
	})
	leader.Store(1)
	lead()

	managertest.WaitFor(t, 10*time.Second, func() error {
		if n := other.SessionCount(); n != 2 {
			return fmt.Errorf("the new leader holds %d sessions, want 2", n)
		}
		return nil
	})
	n := waitNode(t, s, deadID, api.NodeDown)
	if !strings.Contains(n.StatusMessage, "gossip saw it fail") {
		t.Errorf("dead node's message %q does not say gossip saw it fail", n.StatusMessage)
	}
	holdsFor(t, time.Second, func() error {
		for _, ta := range []*testAgent{x, live} {
			if hasDown(nodeHistory(s, ta.nodeID())) {
				return fmt.Errorf("node %s went down across the leader change", ta.name)
			}
		}
		return nil
	})
	after := waitRunning(t, s, svc, 6)
	for _, tk := range before {
		if tk.NodeID == deadID {
			continue
		}
		if !containsTask(after, tk.ID) {
			t.Errorf("task %s of a live node was replaced", tk.ID)
		}
		for _, ta := range agents {
			if n := ta.rt.Starts(tk.ID); n > 1 {
				t.Errorf("task %s started %d times on %s", tk.ID, n, ta.name)
			}
		}
	}
}

func containsTask(ts []*api.Task, id string) bool {
	for _, t := range ts {
		if t.ID == id {
			return true
		}
	}
	return false
}

func restartMsg(hold *durationpb.Duration) *shoalpb.AgentMessage {
	return &shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Restarting{Restarting: &shoalpb.Restarting{Hold: hold}}}
}

// recvAck reads messages until a restart ack (heartbeat answers and
// assignments may come first). Meanwhile it sends heartbeats, as an agent
// does: on a loaded machine the commit behind the ack may take longer than
// the session's silence limit.
func recvAck(t *testing.T, stream shoalpb.Dispatcher_SessionClient) *shoalpb.RestartAck {
	t.Helper()
	stop := make(chan struct{})
	sender := make(chan struct{})
	go func() {
		defer close(sender)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				hb := &shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Heartbeat{Heartbeat: &shoalpb.Heartbeat{}}}
				if stream.Send(hb) != nil {
					return
				}
			}
		}
	}()
	// The caller sends again after this returns: the heartbeat sender must
	// have stopped by then (a stream takes one sender at a time).
	defer func() { close(stop); <-sender }()
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		if ack := m.GetRestartAck(); ack != nil {
			return ack
		}
	}
}

// TestRestartNotice drives the restart notice by hand: a hold out of bounds
// is refused with the limit named and changes nothing; a valid one makes
// the node restarting with its deadline, the session may end without the
// node going down, and when the deadline passes it is down, saying why.
func TestRestartNotice(t *testing.T) {
	s := newSingle(t, testGrace)
	stream := sessionClient(t, s.addr)
	if err := stream.Send(helloMsg("n1")); err != nil {
		t.Fatal(err)
	}
	recvAssignments(t, stream)
	for _, hold := range []*durationpb.Duration{nil, durationpb.New(-time.Second), durationpb.New(2 * time.Hour), {Seconds: 1, Nanos: -5}} {
		if err := stream.Send(restartMsg(hold)); err != nil {
			t.Fatal(err)
		}
		ack := recvAck(t, stream)
		if !strings.Contains(ack.GetError(), "restarting.hold") || ack.GetDeadline() != nil {
			t.Fatalf("hold %v: ack %v, want an error naming restarting.hold", hold, ack)
		}
		if hold.IsValid() && hold.AsDuration() > 0 && !strings.Contains(ack.GetError(), "at most 1h0m0s") {
			t.Errorf("hold %v: error %q does not name the limit", hold, ack.GetError())
		}
		if n := s.state.Read().Node("n1"); n.Status != api.NodeReady || n.Version != 1 {
			t.Fatalf("a refused hold changed the node: %+v", n)
		}
	}

	const hold = 1500 * time.Millisecond
	sent := time.Now()
	if err := stream.Send(restartMsg(durationpb.New(hold))); err != nil {
		t.Fatal(err)
	}
	ack := recvAck(t, stream)
	if ack.GetError() != "" || ack.GetDeadline() == nil {
		t.Fatalf("ack = %v, want a deadline", ack)
	}
	n := s.state.Read().Node("n1")
	if n.Status != api.NodeRestarting || !n.RestartDeadline.Equal(ack.GetDeadline().AsTime()) ||
		n.RestartDeadline.Before(sent.Add(hold)) {
		t.Fatalf("node after the ack: %s until %s, want restarting until the acked deadline %s", n.Status, n.RestartDeadline, ack.GetDeadline().AsTime())
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	down := waitNode(t, s, "n1", api.NodeDown)
	if !strings.Contains(down.StatusMessage, "restart hold") {
		t.Errorf("down message %q does not say the hold passed", down.StatusMessage)
	}
	if down.UpdatedAt.Before(n.RestartDeadline) {
		t.Errorf("node went down at %s, before its hold's deadline %s", down.UpdatedAt, n.RestartDeadline)
	}
	for _, old := range nodeHistory(s, "n1") {
		if old.Status == api.NodeDown && old.UpdatedAt.Before(n.RestartDeadline) {
			t.Errorf("node was down at %s, inside its hold", old.UpdatedAt)
		}
	}
}

// TestSilentAgentSessionEnds: a session whose agent says nothing (a dead
// connection that never closed) is ended by the leader, and the node goes
// down after the grace period.
func TestSilentAgentSessionEnds(t *testing.T) {
	s := newSingle(t, testGrace)
	stream := sessionClient(t, s.addr)
	if err := stream.Send(helloMsg("n1")); err != nil {
		t.Fatal(err)
	}
	recvAssignments(t, stream)
	down := waitNode(t, s, "n1", api.NodeDown)
	if !strings.Contains(down.StatusMessage, "no session") {
		t.Errorf("down message %q does not say the session was lost", down.StatusMessage)
	}
	if m, err := stream.Recv(); err == nil {
		t.Errorf("the silent session was not ended: got %v", m)
	}
}
