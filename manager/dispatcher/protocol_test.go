package dispatcher_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/dispatcher"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

func sessionClient(t *testing.T, addr string) shoalpb.Dispatcher_SessionClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	stream, err := shoalpb.NewDispatcherClient(conn).Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return stream
}

func helloMsg(id string) *shoalpb.AgentMessage {
	return &shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Hello{Hello: &shoalpb.Hello{
		Node:      &shoalpb.Node{Id: id, Hostname: "h-" + id, Resources: &shoalpb.Resources{NanoCpus: 1e9, MemoryBytes: 1 << 30}},
		AgentAddr: "127.0.0.1:1",
	}}}
}

func statusMsg(taskID, state string) *shoalpb.AgentMessage {
	return &shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Status{Status: &shoalpb.StatusBatch{
		Updates: []*shoalpb.TaskStatusUpdate{{TaskId: taskID, Status: &shoalpb.TaskStatus{State: state}}},
	}}}
}

func TestHelloRefused(t *testing.T) {
	tests := []struct {
		name    string
		first   *shoalpb.AgentMessage
		wantMsg string
	}{
		{"not a hello", &shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Heartbeat{Heartbeat: &shoalpb.Heartbeat{}}}, "must be hello"},
		{"no node", &shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Hello{Hello: &shoalpb.Hello{}}}, "hello.node"},
		{"empty id", helloMsg(""), "hello.node.id"},
		{"bad role", &shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Hello{Hello: &shoalpb.Hello{
			Node: &shoalpb.Node{Id: "n1", Hostname: "h", Role: "boss"}}}}, `role "boss"`},
		{"negative memory", &shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Hello{Hello: &shoalpb.Hello{
			Node: &shoalpb.Node{Id: "n1", Hostname: "h", Resources: &shoalpb.Resources{MemoryBytes: -1}}}}}, "negative"},
		{"bad agent addr", &shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Hello{Hello: &shoalpb.Hello{
			Node: &shoalpb.Node{Id: "n1", Hostname: "h"}, AgentAddr: "nowhere"}}}, `agent_addr "nowhere"`},
	}
	s := newSingle(t, testGrace)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stream := sessionClient(t, s.addr)
			if err := stream.Send(tc.first); err != nil {
				t.Fatal(err)
			}
			m, err := stream.Recv()
			for err == nil && m.GetHeartbeat() != nil {
				m, err = stream.Recv()
			}
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("err = %v, want InvalidArgument naming %q", err, tc.wantMsg)
			}
			if n := len(s.state.Read().Nodes()); n != 0 {
				t.Fatalf("a refused hello registered %d nodes", n)
			}
		})
	}
}

// recvAssignments returns the next assignments message, passing over
// heartbeat answers (the first of which opens every session).
func recvAssignments(t *testing.T, stream shoalpb.Dispatcher_SessionClient) *shoalpb.Assignments {
	t.Helper()
	m, err := stream.Recv()
	for err == nil && m.GetHeartbeat() != nil {
		m, err = stream.Recv()
	}
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	a := m.GetAssignments()
	if a == nil {
		t.Fatalf("got %v, want assignments", m)
	}
	return a
}

func taskIDs(ts []*shoalpb.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.GetId())
	}
	return out
}

// TestSessionProtocol drives one session by hand: the full set, then the
// increments as a task is assigned, runs, is asked to shut down and
// reports it did, then a resync, then a status an agent may not send.
func TestSessionProtocol(t *testing.T) {
	s := newSingle(t, testGrace)
	svc := s.createService("web", 0)
	stream := sessionClient(t, s.addr)
	if err := stream.Send(helloMsg("n1")); err != nil {
		t.Fatal(err)
	}
	// The hello is answered at once with a heartbeat that sets the period,
	// before the registration commits.
	if m, err := stream.Recv(); err != nil || m.GetHeartbeat().GetPeriod() == nil {
		t.Fatalf("first message = %v (%v), want a heartbeat with a period", m, err)
	}
	first := recvAssignments(t, stream)
	if !first.GetFull() || first.GetSequence() != 1 || len(first.GetUpsert()) != 0 {
		t.Fatalf("first message = %v, want an empty full set with sequence 1", first)
	}
	if st, err := nodeStatus(s.state.Read(), "n1"); err != nil || st != api.NodeReady {
		t.Fatalf("node n1: %v %v, want ready", st, err)
	}
	ctx := t.Context()
	now := time.Now()
	mustApply := func(cmd raftstore.Command) {
		t.Helper()
		if _, err := s.apply.Apply(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	task := &api.Task{ID: "t1", ServiceID: svc, SpecVersion: 1, Slot: 1, DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskPending}}
	mustApply(raftstore.WriteTasks{Create: []*api.Task{task}, At: now})
	mustApply(raftstore.AssignTasks{Assignments: []raftstore.Assignment{{TaskID: "t1", NodeID: "n1"}}, At: now})
	inc := recvAssignments(t, stream)
	if inc.GetFull() || inc.GetSequence() != 2 || fmt.Sprint(taskIDs(inc.GetUpsert())) != "[t1]" {
		t.Fatalf("after assignment got %v, want increment 2 upserting t1", inc)
	}

	if err := stream.Send(statusMsg("t1", "running")); err != nil {
		t.Fatal(err)
	}
	managertest.WaitFor(t, 5*time.Second, func() error {
		if st := s.state.Read().Task("t1").Status.State; st != api.TaskRunning {
			return fmt.Errorf("t1 is %s", st)
		}
		return nil
	})
	up := task.Clone()
	up.DesiredState, up.NodeID, up.Status = api.TaskShutdown, "n1", api.TaskStatus{State: api.TaskRunning}
	mustApply(raftstore.WriteTasks{Update: []*api.Task{up}, At: now})
	inc = recvAssignments(t, stream)
	if inc.GetSequence() != 3 || len(inc.GetUpsert()) != 1 || inc.GetUpsert()[0].GetDesiredState() != "shutdown" {
		t.Fatalf("after desired shutdown got %v, want increment 3 with t1 desired shutdown", inc)
	}
	if err := stream.Send(statusMsg("t1", "shutdown")); err != nil {
		t.Fatal(err)
	}
	inc = recvAssignments(t, stream)
	if inc.GetSequence() != 4 || fmt.Sprint(inc.GetRemove()) != "[t1]" || len(inc.GetUpsert()) != 0 {
		t.Fatalf("after shutdown got %v, want increment 4 removing t1", inc)
	}

	checkResyncAndRefusal(t, s, stream)
}

// checkResyncAndRefusal asks for a full set (sequence 5 after four
// messages), then sends a status an agent may not send.
func checkResyncAndRefusal(t *testing.T, s *single, stream shoalpb.Dispatcher_SessionClient) {
	t.Helper()
	if err := stream.Send(&shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Resync{Resync: &shoalpb.ResyncRequest{}}}); err != nil {
		t.Fatal(err)
	}
	full := recvAssignments(t, stream)
	if !full.GetFull() || full.GetSequence() != 5 {
		t.Fatalf("after resync got %v, want full set 5", full)
	}

	if err := stream.Send(statusMsg("t1", "orphaned")); err != nil {
		t.Fatal(err)
	}
	m, err := stream.Recv()
	if err != nil {
		t.Fatalf("after an orphaned status the session ended: %v; want the report refused alone", err)
	}
	rej := m.GetStatusRejected().GetUpdates()
	if len(rej) != 1 || rej[0].GetTaskId() != "t1" || !strings.Contains(rej[0].GetReason(), `"orphaned"`) {
		t.Fatalf("after an orphaned status got %v, want t1 refused with a reason naming the state", m)
	}
	if st := s.state.Read().Task("t1").Status.State; st != api.TaskShutdown {
		t.Fatalf("t1 is %s after a refused status, want shutdown", st)
	}
	// The session goes on: a heartbeat is answered.
	if err := stream.Send(&shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Heartbeat{Heartbeat: &shoalpb.Heartbeat{}}}); err != nil {
		t.Fatal(err)
	}
	m, err = stream.Recv()
	if err != nil || m.GetHeartbeat() == nil {
		t.Fatalf("heartbeat answered with %v, %v; want a heartbeat", m, err)
	}
	// A small cluster keeps the agents' default period.
	if p := m.GetHeartbeat().GetPeriod().AsDuration(); p != 300*time.Millisecond {
		t.Fatalf("the answer asks for a heartbeat period of %s, want 300ms for one session", p)
	}
}

// pair is two dispatchers over one state, one leading, with a switch: it
// stands for two managers of one Raft cluster, without the consensus.
type pair struct {
	s      *single
	other  *dispatcher.Dispatcher
	addrs  [2]string
	leader atomic.Int32
}

func TestLeaderChange(t *testing.T) {
	p := &pair{}
	s := newSingle(t, testGrace)
	p.s = s
	p.addrs[0] = s.addr
	p.leader.Store(1)
	leaderAddr := func() string { return p.addrs[p.leader.Load()] }
	p.other, p.addrs[1] = s.serveDispatcher(func() bool { return p.leader.Load() == 1 }, leaderAddr)
	// The first dispatcher now follows the switch too.
	s.setLeadership(func() bool { return p.leader.Load() == 0 }, leaderAddr)

	agents := s.addAgents(3) // they know only the first manager
	for _, ta := range agents {
		waitNode(t, s, ta.nodeID(), api.NodeReady)
	}
	s.startOrchestrator()
	svc := s.createService("web", 6)
	before := waitRunning(t, s, svc, 6)
	if p.other.SessionCount() != 3 || s.d.SessionCount() != 0 {
		t.Fatalf("sessions: leader %d, follower %d; want 3 and 0", p.other.SessionCount(), s.d.SessionCount())
	}

	p.leader.Store(0)
	managertest.WaitFor(t, 10*time.Second, func() error {
		if n := s.d.SessionCount(); n != 3 {
			return fmt.Errorf("new leader holds %d sessions, want 3", n)
		}
		if n := p.other.SessionCount(); n != 0 {
			return fmt.Errorf("old leader still holds %d sessions", n)
		}
		return nil
	})
	after := waitRunning(t, s, svc, 6)
	if fmt.Sprint(runningIDs(before)) != fmt.Sprint(runningIDs(after)) {
		t.Errorf("running tasks changed across a leader change: %v -> %v", runningIDs(before), runningIDs(after))
	}
	for _, ta := range agents {
		for _, tk := range after {
			if n := ta.rt.Starts(tk.ID); n > 1 {
				t.Errorf("task %s started %d times on %s", tk.ID, n, ta.name)
			}
		}
		if hist := nodeHistory(s, ta.nodeID()); hasDown(hist) {
			t.Errorf("node %s went down across a leader change", ta.name)
		}
	}
}

func runningIDs(ts []*api.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func hasDown(hist []*api.Node) bool {
	for _, n := range hist {
		if n.Status == api.NodeDown {
			return true
		}
	}
	return false
}

func TestTaskLogs(t *testing.T) {
	s := newSingle(t, testGrace)
	agents := addReadyAgents(t, s, 1)
	s.startOrchestrator()
	svc := s.createService("web", 1)
	running := waitRunning(t, s, svc, 1)
	conn, err := grpc.NewClient(agents[0].addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := shoalpb.NewAgentClient(conn)
	tests := []struct {
		name     string
		req      *shoalpb.TaskLogsRequest
		wantCode codes.Code
		wantLine string
	}{
		{"lines", &shoalpb.TaskLogsRequest{TaskIds: []string{running[0].ID}, Tail: -1}, codes.OK, "hello from agent-0"},
		{"no ids", &shoalpb.TaskLogsRequest{}, codes.InvalidArgument, ""},
		{"unknown task", &shoalpb.TaskLogsRequest{TaskIds: []string{"nope"}, Tail: -1}, codes.NotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := client.TaskLogs(t.Context(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			var lines []*shoalpb.LogLine
			for {
				l, err := stream.Recv()
				if err != nil {
					if status.Code(err) != tc.wantCode && !(tc.wantCode == codes.OK && err.Error() == "EOF") {
						t.Fatalf("err = %v, want code %s", err, tc.wantCode)
					}
					break
				}
				lines = append(lines, l)
			}
			if tc.wantLine == "" {
				return
			}
			if len(lines) != 1 || string(lines[0].GetLine()) != tc.wantLine ||
				lines[0].GetTaskId() != running[0].ID || lines[0].GetSlot() != 1 || lines[0].GetNodeId() != agents[0].nodeID() {
				t.Fatalf("lines = %v, want one %q of task %s slot 1", lines, tc.wantLine, running[0].ID)
			}
		})
	}
}

// TestSessionHeldDuringElection: a manager that knows no leader holds a
// session request, answering it with heartbeats, and serves it once it
// is elected itself: the agent is neither sent away nor left to time out.
func TestSessionHeldDuringElection(t *testing.T) {
	s := newSingle(t, testGrace)
	var elected atomic.Bool
	s.setLeadership(elected.Load, func() string {
		if elected.Load() {
			return s.addr
		}
		return ""
	})
	stream := sessionClient(t, s.addr)
	if err := stream.Send(helloMsg("n1")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		m, err := stream.Recv()
		if err != nil || m.GetHeartbeat() == nil {
			t.Fatalf("while no leader is known: %v (%v), want a heartbeat", m, err)
		}
	}
	elected.Store(true)
	if a := recvAssignments(t, stream); !a.GetFull() {
		t.Fatalf("first assignments after the election: %v, want a full set", a)
	}
}
