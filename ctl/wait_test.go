package ctl

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// Node IDs of newFakeControl's cluster.
const (
	worker1  = "nodeworker1aaaaaaaaaaaa1"
	worker2  = "nodeworker2bbbbbbbbbbbb2"
	manager1 = "nodemanager1cccccccccc3"
)

// slotTask is one task of a scripted step.
type slotTask struct {
	slot    uint64
	attempt uint64
	node    string
	desired string
	state   string
	msg     string // pending reason, or the error of a failed task
	exit    int32
}

// scriptService plays the orchestrator, scheduler and agents for the
// service called name: at the n-th ListTasks the fake answers with the
// tasks of steps[n] (the last step from then on). Tasks carry the
// service's spec at that moment, unless a step says otherwise.
func scriptService(f *fakeControl, name string, steps ...[]slotTask) {
	n := 0
	f.onListTasks = func(f *fakeControl) {
		svc, err := f.findService(name)
		if err != nil {
			return
		}
		step := steps[min(n, len(steps)-1)]
		n++
		f.tasks = slicesDeleteService(f.tasks, svc.GetId())
		for _, st := range step {
			f.tasks = append(f.tasks, scriptedTask(svc, st))
		}
	}
}

func slicesDeleteService(tasks []*shoalpb.Task, id string) []*shoalpb.Task {
	var out []*shoalpb.Task
	for _, t := range tasks {
		if t.GetServiceId() != id {
			out = append(out, t)
		}
	}
	return out
}

func scriptedTask(svc *shoalpb.Service, st slotTask) *shoalpb.Task {
	t := &shoalpb.Task{
		Id:          fmt.Sprintf("task%s%d%d", svc.GetSpec().GetName(), st.slot, st.attempt),
		ServiceId:   svc.GetId(),
		ServiceName: svc.GetSpec().GetName(), Slot: st.slot, NodeId: st.node, Attempt: st.attempt,
		SpecVersion: svc.GetSpecVersion(), Spec: proto.Clone(svc.GetSpec()).(*shoalpb.ServiceSpec),
		DesiredState: st.desired,
		Status:       &shoalpb.TaskStatus{State: st.state, ExitCode: st.exit, Timestamp: at(time.Duration(10-st.attempt) * time.Second)},
		CreatedAt:    at(time.Duration(10-st.attempt) * time.Second),
	}
	if t.DesiredState == "" {
		t.DesiredState = "running"
	}
	if st.slot == 0 {
		t.Id = fmt.Sprintf("task%s%s%d", svc.GetSpec().GetName(), st.node, st.attempt)
	}
	switch st.state {
	case "new", "pending":
		t.Status.PendingReason = st.msg
	default:
		t.Status.Err = st.msg
	}
	return t
}

// TestWaitCreateGolden follows a create through new, pending, assigned
// and running, with lines in non-terminal mode; the output is golden.
func TestWaitCreateGolden(t *testing.T) {
	f := newFakeControl()
	noNode := "no suitable node (insufficient memory on 2 nodes)"
	scriptService(f, "api",
		nil,
		[]slotTask{{slot: 1, state: "new"}, {slot: 2, state: "new"}, {slot: 3, state: "new"}},
		[]slotTask{{slot: 1, state: "pending"}, {slot: 2, state: "pending", msg: noNode}, {slot: 3, node: worker1, state: "assigned"}},
		[]slotTask{{slot: 1, node: worker1, state: "running"}, {slot: 2, state: "pending", msg: noNode}, {slot: 3, node: manager1, state: "starting"}},
		[]slotTask{{slot: 1, node: worker1, state: "running"}, {slot: 2, node: manager1, state: "preparing"}, {slot: 3, node: manager1, state: "running"}},
		[]slotTask{{slot: 1, node: worker1, state: "running"}, {slot: 2, node: manager1, state: "running"}, {slot: 3, node: manager1, state: "running"}},
	)
	r := runCLI(t, serveTCP(t, f), "service", "create", "--name", "api", "--replicas", "3", "busybox")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	checkGolden(t, "wait_create", "stdout:\n"+r.stdout+"stderr:\n"+r.stderr)
}

// TestWaitFailures checks the exit status and message when a service
// cannot converge.
func TestWaitFailures(t *testing.T) {
	failed := func(slot, attempt uint64, desired string) slotTask {
		return slotTask{slot: slot, attempt: attempt, node: worker1, desired: desired, state: "failed", msg: "task: non-zero exit (1)", exit: 1}
	}
	tests := []struct {
		name  string
		args  []string
		steps [][]slotTask
		want  []string
	}{
		{"restart condition none", []string{"--restart-condition", "none"},
			[][]slotTask{{{slot: 1, node: worker1, state: "starting"}}, {failed(1, 0, "running")}},
			[]string{"api did not converge", "api.1 failed on worker-1: task: non-zero exit (1) and will not be restarted (restart condition none)"}},
		{"max attempts reached", []string{"--restart-max-attempts", "2"},
			[][]slotTask{{{slot: 1, node: worker1, state: "starting"}}, {failed(1, 0, "shutdown"), failed(1, 1, "shutdown"), failed(1, 2, "running")}},
			[]string{"will not be restarted (max_attempts 2 reached)"}},
		{"same slot failing again and again", nil,
			[][]slotTask{
				{{slot: 1, node: worker1, state: "starting"}},
				{failed(1, 0, "shutdown"), {slot: 1, attempt: 1, state: "pending"}},
				{failed(1, 0, "shutdown"), failed(1, 1, "shutdown"), {slot: 1, attempt: 2, state: "new"}},
				{failed(1, 0, "shutdown"), failed(1, 1, "shutdown"), failed(1, 2, "shutdown"), {slot: 1, attempt: 3, state: "new"}},
			},
			[]string{"api.1 failed 3 times since shoalctl started waiting (last: task: non-zero exit (1))", "see shoalctl service ps api"}},
		{"timeout", []string{"--timeout", "5s"},
			[][]slotTask{{{slot: 1, state: "pending", msg: "no suitable node (constraint node.labels.zone==z matches no node)"}}},
			[]string{"did not converge within --timeout 5s", "api 0/1 converged (api.1: pending: no suitable node (constraint node.labels.zone==z matches no node))",
				"the change is committed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeControl()
			scriptService(f, "api", tt.steps...)
			args := append(append([]string{"service", "create", "--name", "api"}, tt.args...), "busybox")
			r := mustFail(t, serveTCP(t, f), args, tt.want...)
			if r.stdout != "svcapinew0000000000\n" {
				t.Errorf("stdout %q, want the new service's ID (the change is committed)", r.stdout)
			}
		})
	}
}

// TestWaitScaleKeepsOldTasks: a scale leaves the running tasks at their
// older spec version; they count as converged.
func TestWaitScaleKeepsOldTasks(t *testing.T) {
	f := newFakeControl()
	f.tasks = nil
	n := 0
	f.onListTasks = func(f *fakeControl) {
		svc, _ := f.findService("web")
		f.tasks = nil
		for slot := uint64(1); slot <= 5; slot++ {
			st := slotTask{slot: slot, node: worker1, state: "running"}
			if slot > 3 && n == 0 {
				st = slotTask{slot: slot, state: "pending"}
			}
			task := scriptedTask(svc, st)
			if slot <= 3 {
				task.SpecVersion = 1 // made before the scale
				task.Spec.Replicas = 3
			}
			f.tasks = append(f.tasks, task)
		}
		n++
	}
	r := runCLI(t, serveTCP(t, f), "service", "scale", "web=5")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "web: converged (5/5)") {
		t.Errorf("stderr does not end converged:\n%s", r.stderr)
	}
}

// TestWaitDrainGolden drains a node until no task is left on it.
func TestWaitDrainGolden(t *testing.T) {
	f := newFakeControl()
	steps := [][2]string{{"running", "running"}, {"shutdown", "running"}, {"shutdown", "shutdown"}}
	n := 0
	f.onListTasks = func(f *fakeControl) {
		s := steps[min(n, len(steps)-1)]
		n++
		f.tasks = []*shoalpb.Task{
			fixtureTask("taskweb1new00000000000", "web", 1, worker1, "shutdown", s[0], time.Minute),
			fixtureTask("taskagentw1000000000000", "agent", 0, worker1, "shutdown", s[1], time.Minute),
			fixtureTask("taskweb2000000000000000", "web", 2, manager1, "running", "running", time.Hour),
		}
	}
	r := runCLI(t, serveTCP(t, f), "node", "update", "--availability", "drain", "worker-1")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	checkGolden(t, "wait_drain", "stdout:\n"+r.stdout+"stderr:\n"+r.stderr)
}

// TestWaitTerminal draws bars when stderr is a terminal.
func TestWaitTerminal(t *testing.T) {
	f := newFakeControl()
	scriptService(f, "api",
		[]slotTask{{slot: 1, state: "pending"}, {slot: 2, state: "pending"}},
		[]slotTask{{slot: 1, node: worker1, state: "running"}, {slot: 2, state: "pending"}},
		[]slotTask{{slot: 1, node: worker1, state: "running"}, {slot: 2, node: worker1, state: "running"}},
	)
	app, _, errOut := testApp(serveTCP(t, f))
	app.Terminal = func(io.Writer) bool { return true }
	if code := Execute(t.Context(), app, []string{"service", "create", "--name", "api", "--replicas", "2", "busybox"}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	out := errOut.String()
	for _, want := range []string{"\x1b[2K", "\x1b[2A", "api", "(2/2", "converged (2/2)", "api.2: pending"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, out)
		}
	}
}

// TestWaitRPCRate checks that a wait reads the state at a bounded rate:
// three requests per poll, one poll per 200 ms of the clock.
func TestWaitRPCRate(t *testing.T) {
	f := newFakeControl()
	scriptService(f, "api", []slotTask{{slot: 1, state: "pending"}})
	mustFail(t, serveTCP(t, f), []string{"service", "create", "--name", "api", "--timeout", "10s", "busybox"}, "did not converge")
	polls := len(sent[*shoalpb.ListTasksRequest](f))
	// 10 s / 200 ms = 50 sleeps, so 51 polls at most.
	if polls < 45 || polls > 51 {
		t.Errorf("%d polls in 10s of the clock, want about 50", polls)
	}
	if l, n := len(sent[*shoalpb.ListServicesRequest](f)), len(sent[*shoalpb.ListNodesRequest](f)); l != polls || n != polls {
		t.Errorf("per poll: %d ListServices, %d ListNodes for %d ListTasks, want one each", l, n, polls)
	}
}

func TestDetachDoesNotWait(t *testing.T) {
	f := newFakeControl()
	mustRun(t, serveTCP(t, f), "service", "create", "-d", "--name", "api", "busybox")
	if n := len(sent[*shoalpb.ListTasksRequest](f)); n != 0 {
		t.Errorf("--detach polled %d times", n)
	}
}
