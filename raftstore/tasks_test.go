package raftstore

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

func taskWith(id string, f func(*api.Task)) *api.Task {
	task := testTask(id, testService("svc-web", "web", 3), 9)
	f(task)
	return task
}

func TestApplyWriteTasks(t *testing.T) {
	web := testService("svc-web", "web", 3)
	runApplyCases(t, []applyCase{
		{name: "create", cmd: WriteTasks{Create: []*api.Task{testTask("t4", web, 4)}, At: t0},
			check: func(t *testing.T, v *View, value any) {
				if got := len(v.TasksByService("svc-web")); got != 4 {
					t.Errorf("tasks = %d, want 4", got)
				}
				if r := value.(WriteTasksResult); r.Created != 1 {
					t.Errorf("result = %+v", r)
				}
			}},
		{name: "create existing id", cmd: WriteTasks{Create: []*api.Task{testTask("t9", web, 9), testTask("t1", web, 1)}},
			wantErr: ErrAlreadyExists, errText: `task "t1"`},
		{name: "create twice in one command", cmd: WriteTasks{Create: []*api.Task{testTask("t9", web, 9), testTask("t9", web, 9)}},
			wantErr: ErrAlreadyExists, errText: `task "t9"`},
		{name: "create for unknown service", cmd: WriteTasks{Create: []*api.Task{testTask("t9", testService("svc-gone", "gone", 1), 1)}},
			wantErr: ErrNotFound, errText: `"svc-gone"`},
		{name: "create bad state", cmd: WriteTasks{Create: []*api.Task{taskWith("t9", func(x *api.Task) { x.DesiredState = 99 })}},
			wantErr: ErrInvalid, errText: `"t9"`},
		{name: "update forward", cmd: WriteTasks{At: t0.Add(1), Update: []*api.Task{
			taskWith("t3", func(x *api.Task) { x.NodeID, x.Status.State, x.DesiredState = "n1", api.TaskRunning, api.TaskShutdown }),
			taskWith("t1", func(x *api.Task) { x.NodeID = "n1" }),
		}},
			check: func(t *testing.T, v *View, value any) {
				if got := taskState(v, "t3"); got != "running/shutdown@n1" {
					t.Errorf("t3 = %s", got)
				}
				if got := taskState(v, "t1"); got != "new/running@n1" {
					t.Errorf("t1 = %s", got)
				}
				if r := value.(WriteTasksResult); r.Updated != 2 || len(r.Refused) != 0 {
					t.Errorf("result = %+v", r)
				}
			}},
		{name: "update stale copy", cmd: WriteTasks{Update: []*api.Task{
			// An orchestrator's old copy of t3: status new, no node.
			taskWith("t3", func(x *api.Task) { x.DesiredState = api.TaskShutdown }),
			taskWith("t8", func(*api.Task) {}),
		}},
			check: func(t *testing.T, v *View, value any) {
				if got := taskState(v, "t3"); got != "running/shutdown@n1" {
					t.Errorf("t3 = %s: desired state applies, status and node stay", got)
				}
				r := value.(WriteTasksResult)
				if r.Updated != 1 || len(r.Refused) != 2 || r.Refused[0].TaskID != "t3" || r.Refused[1].TaskID != "t8" {
					t.Errorf("result = %+v", r)
				}
			}},
		{name: "update bad state", cmd: WriteTasks{Update: []*api.Task{taskWith("t1", func(x *api.Task) { x.Status.State = api.TaskRemove })}},
			wantErr: ErrInvalid, errText: `"t1"`},
		{name: "delete", cmd: WriteTasks{Delete: []string{"t1", "nope"}},
			check: func(t *testing.T, v *View, value any) {
				if v.Task("t1") != nil {
					t.Error("t1 still there")
				}
				if r := value.(WriteTasksResult); r.Deleted != 1 {
					t.Errorf("result = %+v", r)
				}
			}},
	})
}

func TestApplyAssignTasks(t *testing.T) {
	// n1 has 4 CPUs and 4 GiB, t3 (running there) holds 1 and 1: three
	// more tasks fit.
	big := testService("svc-big", "big", 1)
	big.Spec.Resources.Reservations.MemoryBytes = 4 * gib
	runApplyCases(t, []applyCase{
		{name: "fits", cmd: AssignTasks{At: t0.Add(1), Assignments: []Assignment{{"t1", "n1"}, {"t2", "n1"}}},
			check: func(t *testing.T, v *View, value any) {
				if r := value.(AssignResult); r.Assigned != 2 || len(r.Refused) != 0 {
					t.Fatalf("result = %+v", r)
				}
				if got := taskState(v, "t1"); got != "assigned/running@n1" {
					t.Errorf("t1 = %s", got)
				}
				if got := len(v.TasksByNode("n1")); got != 3 {
					t.Errorf("tasks on n1 = %d, want 3", got)
				}
			}},
		{name: "refusals", cmd: AssignTasks{Assignments: []Assignment{
			{"t1", "n2"}, {"t1", "n3"}, {"t1", "n9"}, {"t3", "n1"}, {"t9", "n1"}, {"t1", "n1"}, {"t1", "n1"},
		}},
			check: func(t *testing.T, v *View, value any) {
				r := value.(AssignResult)
				want := []string{`node "n2" is down`, `node "n3" availability is drain`, `node "n9" not found`,
					`task is already bound to node "n1"`, `task "t9" not found`, `task is already bound to node "n1"`}
				var got []string
				for _, p := range r.Refused {
					got = append(got, p.Reason)
				}
				if r.Assigned != 1 || !reflect.DeepEqual(got, want) {
					t.Fatalf("assigned %d, refused %q\nwant refused %q", r.Assigned, got, want)
				}
			}},
		{name: "pending reason", cmd: AssignTasks{At: t0.Add(1), Pending: []PendingReason{{"t1", "no node with 8 CPUs"}, {"t3", "ignored"}}},
			check: func(t *testing.T, v *View, _ any) {
				task := v.Task("t1")
				if task.Status.State != api.TaskPending || task.Status.PendingReason != "no node with 8 CPUs" {
					t.Fatalf("t1 status = %+v", task.Status)
				}
				if got := taskState(v, "t3"); got != "running/running@n1" {
					t.Errorf("t3 = %s", got)
				}
			}},
	})

	t.Run("memory runs out within one command", func(t *testing.T) {
		s := fixture(t)
		a := NewLocalApplier(s)
		web := s.Read().Service("svc-web")
		var tasks []*api.Task
		var as []Assignment
		for _, id := range []string{"a", "b", "c", "d"} {
			tasks = append(tasks, testTask(id, web, 10))
			as = append(as, Assignment{TaskID: id, NodeID: "n1"})
		}
		if _, err := a.Apply(t.Context(), WriteTasks{Create: tasks}); err != nil {
			t.Fatal(err)
		}
		res, err := a.Apply(t.Context(), AssignTasks{Assignments: as})
		if err != nil {
			t.Fatal(err)
		}
		r := res.Value.(AssignResult)
		if r.Assigned != 3 || len(r.Refused) != 1 || r.Refused[0].TaskID != "d" {
			t.Fatalf("result = %+v, want 3 assigned and d refused", r)
		}
		want := `node "n1": not enough CPU: need 1000000000 nanocpus, 0 free`
		if r.Refused[0].Reason != want {
			t.Errorf("reason = %q, want %q", r.Refused[0].Reason, want)
		}
	})
}

func TestApplyUpdateTaskStatus(t *testing.T) {
	st := func(s api.TaskState, msg string) api.TaskStatus { return api.TaskStatus{State: s, Message: msg} }
	runApplyCases(t, []applyCase{
		{name: "reports", cmd: UpdateTaskStatus{NodeID: "n1", At: t0.Add(5), Updates: []TaskStatusUpdate{
			{"t3", st(api.TaskFailed, "exit 1")},  // forward
			{"t3", st(api.TaskRunning, "again")},  // backward after that
			{"t1", st(api.TaskRunning, "")},       // not n1's task
			{"nope", st(api.TaskRunning, "")},     // unknown
			{"t3", st(api.TaskFailed, "another")}, // terminal: frozen
		}},
			check: func(t *testing.T, v *View, value any) {
				r := value.(TaskStatusResult)
				if r != (TaskStatusResult{Applied: 1, Stale: 2, Unknown: 2}) {
					t.Errorf("result = %+v", r)
				}
				task := v.Task("t3")
				if task.Status.State != api.TaskFailed || task.Status.Message != "exit 1" || !task.Status.Timestamp.Equal(t0.Add(5)) {
					t.Errorf("t3 status = %+v", task.Status)
				}
			}},
		{name: "same state new details", cmd: UpdateTaskStatus{NodeID: "n1", Updates: []TaskStatusUpdate{
			{"t3", api.TaskStatus{State: api.TaskRunning, ContainerID: "c-1"}},
			{"t3", api.TaskStatus{State: api.TaskRunning, Message: "healthy"}},
		}},
			check: func(t *testing.T, v *View, value any) {
				if r := value.(TaskStatusResult); r.Applied != 2 {
					t.Errorf("result = %+v", r)
				}
				if s := v.Task("t3").Status; s.ContainerID != "c-1" || s.Message != "healthy" {
					t.Errorf("status = %+v", s)
				}
			}},
	})
}

func TestApplyBatch(t *testing.T) {
	s := fixture(t)
	before := s.Read()
	_, value, err := s.apply(0, Batch{Commands: []Command{
		CreateService{Service: testService("svc-a", "a", 1)},
		CreateService{Service: testService("svc-b", "a", 1)}, // name taken by the first
		SetNodeStatus{ID: "n2", Status: api.NodeReady},
		Batch{Commands: []Command{RemoveManager{ID: "m9"}}},
	}})
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	res := value.([]BatchResult)
	if len(res) != 4 {
		t.Fatalf("results = %d, want 4", len(res))
	}
	if res[0].Err != nil || res[0].Value.(*api.Service).ID != "svc-a" {
		t.Errorf("result 0 = %+v", res[0])
	}
	if !errors.Is(res[1].Err, ErrAlreadyExists) {
		t.Errorf("result 1 err = %v, want ErrAlreadyExists", res[1].Err)
	}
	if res[2].Err != nil {
		t.Errorf("result 2 err = %v", res[2].Err)
	}
	if inner := res[3].Value.([]BatchResult); !errors.Is(inner[0].Err, ErrNotFound) {
		t.Errorf("nested result = %+v", inner)
	}
	v := s.Read()
	if len(v.Services()) != 2 || v.Service("svc-b") != nil || v.Node("n2").Status != api.NodeReady {
		t.Errorf("after batch: services %d, n2 %s", len(v.Services()), v.Node("n2").Status)
	}
	if v.Index() != before.Index()+1 {
		t.Errorf("index %d after %d: a batch is one entry", v.Index(), before.Index())
	}
	if len(before.Services()) != 1 {
		t.Errorf("older view sees %d services, want 1", len(before.Services()))
	}
}

// TestTasksAwaitingNode: the index holds exactly the tasks that wait for a
// node, as they are created, assigned, stopped and removed.
func TestTasksAwaitingNode(t *testing.T) {
	s := fixture(t) // t1, t2 new; t3 running on n1
	awaiting := func() []string {
		var out []string
		for _, task := range s.Read().TasksAwaitingNode() {
			if !task.AwaitsNode() {
				t.Errorf("task %s (%s, desired %s) listed as awaiting a node", task.ID, task.Status.State, task.DesiredState)
			}
			out = append(out, task.ID)
		}
		return out
	}
	check := func(step string, want ...string) {
		t.Helper()
		if got := awaiting(); !slices.Equal(got, want) {
			t.Errorf("%s: awaiting a node %v, want %v", step, got, want)
		}
	}
	check("fixture", "t1", "t2")
	if _, _, err := s.apply(0, AssignTasks{Assignments: []Assignment{{TaskID: "t1", NodeID: "n1"}}, At: t0}); err != nil {
		t.Fatal(err)
	}
	check("t1 assigned", "t2")
	stop := s.Read().Task("t2").Clone()
	stop.DesiredState = api.TaskShutdown
	if _, _, err := s.apply(0, WriteTasks{Update: []*api.Task{stop}, At: t0}); err != nil {
		t.Fatal(err)
	}
	check("t2 told to stop")
	web := s.Read().Service("svc-web")
	if _, _, err := s.apply(0, WriteTasks{Create: []*api.Task{testTask("t4", web, 4)}, At: t0}); err != nil {
		t.Fatal(err)
	}
	check("t4 created", "t4")
	if _, _, err := s.apply(0, RemoveService{ID: "svc-web", At: t0}); err != nil {
		t.Fatal(err)
	}
	check("service removed")
}
