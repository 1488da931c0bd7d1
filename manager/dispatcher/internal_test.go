package dispatcher

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// FuzzAgentMessage decodes arbitrary bytes as an agent's message and runs
// them through what the dispatcher does with one: it must never panic,
// and what it accepts must be what an agent may say.
func FuzzAgentMessage(f *testing.F) {
	seeds := []*shoalpb.AgentMessage{
		{Msg: &shoalpb.AgentMessage_Hello{Hello: &shoalpb.Hello{
			Node: &shoalpb.Node{Id: "n1", Hostname: "h", Role: "worker", Resources: &shoalpb.Resources{NanoCpus: 1}}, AgentAddr: "127.0.0.1:1",
		}}},
		{Msg: &shoalpb.AgentMessage_Status{Status: &shoalpb.StatusBatch{Updates: []*shoalpb.TaskStatusUpdate{
			{TaskId: "t1", Status: &shoalpb.TaskStatus{State: "running"}},
			{TaskId: "t2", Status: &shoalpb.TaskStatus{State: "orphaned"}},
		}}}},
		{Msg: &shoalpb.AgentMessage_Status{Status: &shoalpb.StatusBatch{Updates: []*shoalpb.TaskStatusUpdate{
			{TaskId: "t3", Status: &shoalpb.TaskStatus{State: "running", Health: "healthy", HealthLog: []*shoalpb.ProbeResult{
				{Start: timestamppb.New(time.Unix(1, 0)), End: timestamppb.New(time.Unix(2, 0)), ExitCode: 0, Output: "ok"},
			}}},
			{TaskId: "t4", Status: &shoalpb.TaskStatus{State: "running", Health: "sick"}},
		}}}},
	}
	for _, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m shoalpb.AgentMessage
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		if h := m.GetHello(); h != nil {
			n, err := nodeFromHello(h, time.Unix(0, 0))
			if err == nil && (n.ID == "" || n.Hostname == "" || n.Status != api.NodeReady ||
				(n.Role != api.RoleWorker && n.Role != api.RoleManager) || n.Resources.NanoCPUs < 0 || n.Resources.MemoryBytes < 0) {
				t.Fatalf("accepted hello gives node %+v", n)
			}
		}
		if st := m.GetStatus(); st != nil {
			ups, refused := checkReports(st)
			if len(ups)+len(refused) != len(st.GetUpdates()) {
				t.Fatalf("%d updates became %d accepted and %d refused", len(st.GetUpdates()), len(ups), len(refused))
			}
			for _, u := range ups {
				if u.TaskID == "" || !agentState(u.Status.State) {
					t.Fatalf("accepted update %+v", u)
				}
				// What is accepted must go into a Raft entry.
				if _, err := raftstore.EncodeCommand(raftstore.UpdateTaskStatus{NodeID: "n1", Updates: []raftstore.TaskStatusUpdate{u}}); err != nil {
					t.Fatalf("accepted update %+v does not encode: %v", u, err)
				}
			}
			for _, r := range refused {
				if r.GetReason() == "" {
					t.Fatalf("refused %q without a reason", r.GetTaskId())
				}
			}
		}
	})
}

func TestInSet(t *testing.T) {
	tests := []struct {
		name    string
		desired api.TaskState
		st      api.TaskState
		want    bool
	}{
		{"pending", api.TaskRunning, api.TaskPending, false},
		{"assigned", api.TaskRunning, api.TaskAssigned, true},
		{"running", api.TaskRunning, api.TaskRunning, true},
		{"failed, not yet replaced", api.TaskRunning, api.TaskFailed, true},
		{"to shut down", api.TaskShutdown, api.TaskRunning, true},
		{"to remove", api.TaskRemove, api.TaskStarting, true},
		{"shut down", api.TaskShutdown, api.TaskShutdown, false},
		{"failed and replaced", api.TaskShutdown, api.TaskFailed, false},
		{"orphaned", api.TaskShutdown, api.TaskOrphaned, false},
		{"orphaned, desired running", api.TaskRunning, api.TaskOrphaned, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			task := &api.Task{DesiredState: tc.desired, Status: api.TaskStatus{State: tc.st}}
			if got := inSet(task); got != tc.want {
				t.Errorf("inSet(desired %s, state %s) = %v, want %v", tc.desired, tc.st, got, tc.want)
			}
		})
	}
}

// TestRouteTask checks which sessions a task event wakes: only those whose
// assignment set it changes.
func TestRouteTask(t *testing.T) {
	task := func(node string, desired, st api.TaskState, spec uint64) *api.Task {
		return &api.Task{ID: "t1", NodeID: node, DesiredState: desired, SpecVersion: spec, Status: api.TaskStatus{State: st}}
	}
	run := api.TaskRunning
	tests := []struct {
		name   string
		before *api.Task // nil: not known
		action string
		after  *api.Task
		want   []string // nodes woken
	}{
		{"assigned", task("", run, api.TaskPending, 1), "update", task("a", run, api.TaskAssigned, 1), []string{"a"}},
		{"new and unknown", nil, "create", task("a", run, api.TaskAssigned, 1), []string{"a"}},
		{"status report", task("a", run, api.TaskAssigned, 1), "update", task("a", run, api.TaskRunning, 1), nil},
		{"desired shutdown", task("a", run, api.TaskRunning, 1), "update", task("a", api.TaskShutdown, api.TaskRunning, 1), []string{"a"}},
		{"stopped and unwanted leaves", task("a", api.TaskShutdown, api.TaskRunning, 1), "update", task("a", api.TaskShutdown, api.TaskShutdown, 1), []string{"a"}},
		{"orphaned leaves", task("a", run, api.TaskRunning, 1), "update", task("a", run, api.TaskOrphaned, 1), []string{"a"}},
		{"removed while in", task("a", run, api.TaskRunning, 1), "remove", task("a", run, api.TaskRunning, 1), []string{"a"}},
		{"removed while out", task("a", api.TaskShutdown, api.TaskShutdown, 1), "remove", task("a", api.TaskShutdown, api.TaskShutdown, 1), nil},
		{"pending stays out", task("", run, api.TaskNew, 1), "update", task("", run, api.TaskPending, 1), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := New(Config{})
			for _, n := range []string{"a", "b"} {
				d.sessions.attach(&session{d: d, nodeID: n, wake: make(chan struct{}, 1)})
			}
			known := map[string]seenTask{}
			if tc.before != nil {
				known["t1"] = seen(tc.before)
			}
			d.routeTask(raftstore.Event{Kind: "task", Action: tc.action, Task: tc.after}, known)
			var woken []string
			for _, n := range []string{"a", "b"} {
				select {
				case <-d.sessions.get(n).wake:
					woken = append(woken, n)
				default:
				}
			}
			if fmt.Sprint(woken) != fmt.Sprint(tc.want) {
				t.Errorf("woke %v, want %v", woken, tc.want)
			}
		})
	}
}

// TestHealthReportsChecked: an agent's health report is refused alone,
// with the reason, when the state could not hold it.
func TestHealthReportsChecked(t *testing.T) {
	probe := func(out string) *shoalpb.ProbeResult { return &shoalpb.ProbeResult{Output: out} }
	many := make([]*shoalpb.ProbeResult, api.MaxHealthLog+1)
	for i := range many {
		many[i] = probe("x")
	}
	tests := []struct {
		name string
		st   *shoalpb.TaskStatus
		want string // "" accepted
	}{
		{"healthy", &shoalpb.TaskStatus{State: "running", Health: "healthy", HealthLog: []*shoalpb.ProbeResult{probe("ok")}}, ""},
		{"unknown health", &shoalpb.TaskStatus{State: "running", Health: "sick"}, `unknown health state "sick"`},
		{"too many probes", &shoalpb.TaskStatus{State: "running", Health: "healthy", HealthLog: many}, "6 probe results, limit 5"},
		{"output too long", &shoalpb.TaskStatus{State: "running", Health: "healthy",
			HealthLog: []*shoalpb.ProbeResult{probe(string(make([]byte, api.MaxProbeOutput+1)))}}, "[0].output is 4097 bytes, limit 4096"},
		{"probe time out of range", &shoalpb.TaskStatus{State: "running", Health: "healthy",
			HealthLog: []*shoalpb.ProbeResult{{Start: &timestamppb.Timestamp{Seconds: 1 << 40}}}}, "status.health_log[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, refused := checkReports(&shoalpb.StatusBatch{Updates: []*shoalpb.TaskStatusUpdate{
				{TaskId: "t1", Status: tt.st}, {TaskId: "t2", Status: &shoalpb.TaskStatus{State: "running"}},
			}})
			switch {
			case tt.want == "" && (len(ok) != 2 || len(refused) != 0):
				t.Fatalf("accepted %d, refused %v; want both accepted", len(ok), refused)
			case tt.want != "" && (len(ok) != 1 || len(refused) != 1 || !strings.Contains(refused[0].GetReason(), tt.want)):
				t.Fatalf("accepted %d, refused %v; want t1 alone refused with %q", len(ok), refused, tt.want)
			}
		})
	}
}

// TestStatusEntriesBounded: queued reports are committed in entries of at
// most maxStatusesPerEntry reports and about maxStatusBytesPerEntry bytes,
// each report once, so reports with long probe output stay under the
// largest entry Raft takes.
func TestStatusEntriesBounded(t *testing.T) {
	long := strings.Repeat("x", api.MaxProbeOutput)
	log := make([]api.ProbeResult, api.MaxHealthLog)
	for i := range log {
		log[i] = api.ProbeResult{Start: time.Unix(1, 0), End: time.Unix(2, 0), ExitCode: 1, Output: long}
	}
	tests := []struct {
		name    string
		n       int
		status  api.TaskStatus
		entries int
	}{
		{"many small", 3000, api.TaskStatus{State: api.TaskRunning}, 2},
		{"long probe output", 1000, api.TaskStatus{State: api.TaskRunning, Health: api.HealthUnhealthy, HealthLog: log}, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &statusBatcher{queued: map[string]map[string]raftstore.TaskStatusUpdate{}}
			for i := range tt.n {
				node := fmt.Sprintf("n%d", i%3)
				b.queue(node, []raftstore.TaskStatusUpdate{{TaskID: fmt.Sprintf("t%05d", i), Status: tt.status}})
			}
			entries := b.take(time.Unix(10, 0))
			seen := map[string]bool{}
			for _, cmds := range entries {
				cmd := raftstore.Batch{Commands: cmds}
				buf, err := raftstore.EncodeCommand(cmd)
				if err != nil {
					t.Fatal(err)
				}
				if len(buf) > raftstore.MaxEntryBytes {
					t.Fatalf("an entry of %d bytes, over %d", len(buf), raftstore.MaxEntryBytes)
				}
				n := 0
				for _, c := range cmds {
					for _, u := range c.(raftstore.UpdateTaskStatus).Updates {
						if seen[u.TaskID] {
							t.Fatalf("report of %s twice", u.TaskID)
						}
						seen[u.TaskID] = true
						n++
					}
				}
				if n > maxStatusesPerEntry {
					t.Fatalf("an entry of %d reports", n)
				}
			}
			if len(seen) != tt.n || len(entries) != tt.entries {
				t.Fatalf("%d reports in %d entries, want %d in %d", len(seen), len(entries), tt.n, tt.entries)
			}
		})
	}
}
