package raftstore

import (
	"reflect"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

// globalService is a global service reserving cpu nanocpus and mem bytes
// per task.
func globalService(id string, cpu, mem int64) *api.Service {
	svc := testService(id, id, 0)
	svc.Spec.Mode = api.ModeGlobal
	svc.Spec.Resources.Reservations = api.Resources{NanoCPUs: cpu, MemoryBytes: mem}
	return svc
}

// namedTask is a task of svc that names its node from creation, as the
// global orchestrator makes them.
func namedTask(id string, svc *api.Service, nodeID string, state api.TaskState) *api.Task {
	task := testTask(id, svc, 0)
	task.NodeID = nodeID
	task.Status.State = state
	return task
}

// TestApplyAssignNamedNode: a task that names its node (global) is assigned
// through the same checks as any other, and only to that node. On the
// fixture, n1 has 4 CPUs and 4 GiB of which t3 holds 1 and 1.
func TestApplyAssignNamedNode(t *testing.T) {
	small := globalService("svc-small", cpu1, gib)
	wide := globalService("svc-wide", 2*cpu1, gib)
	wide2 := globalService("svc-wide2", 2*cpu1, gib)
	big := globalService("svc-big", cpu1, 4*gib)
	cases := []struct {
		name     string
		services []*api.Service
		tasks    []*api.Task
		assign   []Assignment
		assigned int
		refused  []string          // reasons, in order
		want     map[string]string // task id → state/desired@node
		reasons  map[string]string // task id → pending reason afterwards
	}{
		{name: "new task to its own node", services: []*api.Service{small},
			tasks:  []*api.Task{namedTask("g1", small, "n1", api.TaskNew)},
			assign: []Assignment{{"g1", "n1"}}, assigned: 1,
			want: map[string]string{"g1": "assigned/running@n1"}},
		{name: "pending task to its own node", services: []*api.Service{small},
			tasks:  []*api.Task{namedTask("g1", small, "n1", api.TaskPending)},
			assign: []Assignment{{"g1", "n1"}}, assigned: 1,
			want: map[string]string{"g1": "assigned/running@n1"}},
		{name: "not enough memory", services: []*api.Service{big},
			tasks:   []*api.Task{namedTask("g1", big, "n1", api.TaskNew)},
			assign:  []Assignment{{"g1", "n1"}},
			refused: []string{`node "n1": not enough memory: need 4294967296 bytes, 3221225472 free`},
			want:    map[string]string{"g1": "pending/running@n1"},
			reasons: map[string]string{"g1": `node "n1": not enough memory: need 4294967296 bytes, 3221225472 free`}},
		{name: "two services, room for one", services: []*api.Service{wide, wide2},
			tasks: []*api.Task{
				namedTask("g1", wide, "n1", api.TaskNew),
				namedTask("g2", wide2, "n1", api.TaskPending),
			},
			assign: []Assignment{{"g1", "n1"}, {"g2", "n1"}}, assigned: 1,
			refused: []string{`node "n1": not enough CPU: need 2000000000 nanocpus, 1000000000 free`},
			want:    map[string]string{"g1": "assigned/running@n1", "g2": "pending/running@n1"},
			reasons: map[string]string{"g2": `node "n1": not enough CPU: need 2000000000 nanocpus, 1000000000 free`}},
		{name: "to another node", services: []*api.Service{small},
			tasks:   []*api.Task{namedTask("g1", small, "n3", api.TaskNew)},
			assign:  []Assignment{{"g1", "n1"}},
			refused: []string{`task is already bound to node "n3"`},
			want:    map[string]string{"g1": "new/running@n3"},
			reasons: map[string]string{"g1": ""}},
		{name: "own node not usable", services: []*api.Service{small},
			tasks: []*api.Task{
				namedTask("g2", small, "n2", api.TaskNew),
				namedTask("g3", small, "n3", api.TaskNew),
				namedTask("g9", small, "n9", api.TaskNew),
			},
			assign:  []Assignment{{"g2", "n2"}, {"g3", "n3"}, {"g9", "n9"}},
			refused: []string{`node "n2" is down`, `node "n3" availability is drain`, `node "n9" not found`},
			want:    map[string]string{"g2": "pending/running@n2", "g3": "pending/running@n3", "g9": "pending/running@n9"}},
		{name: "assigned twice", services: []*api.Service{small},
			tasks:  []*api.Task{namedTask("g1", small, "n1", api.TaskNew)},
			assign: []Assignment{{"g1", "n1"}, {"g1", "n1"}}, assigned: 1,
			refused: []string{`task is already bound to node "n1"`},
			want:    map[string]string{"g1": "assigned/running@n1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := fixture(t)
			a := NewLocalApplier(s)
			for _, svc := range tc.services {
				if _, err := a.Apply(t.Context(), CreateService{Service: svc}); err != nil {
					t.Fatalf("create %s: %v", svc.ID, err)
				}
			}
			if _, err := a.Apply(t.Context(), WriteTasks{Create: tc.tasks, At: t0}); err != nil {
				t.Fatalf("create tasks: %v", err)
			}
			res, err := a.Apply(t.Context(), AssignTasks{Assignments: tc.assign, At: t0.Add(1)})
			if err != nil {
				t.Fatalf("assign: %v", err)
			}
			r := res.Value.(AssignResult)
			var refused []string
			for _, p := range r.Refused {
				refused = append(refused, p.Reason)
			}
			if r.Assigned != tc.assigned || !reflect.DeepEqual(refused, tc.refused) {
				t.Fatalf("assigned %d, refused %q\nwant assigned %d, refused %q", r.Assigned, refused, tc.assigned, tc.refused)
			}
			v := s.Read()
			for id, want := range tc.want {
				if got := taskState(v, id); got != want {
					t.Errorf("%s = %s, want %s", id, got, want)
				}
			}
			for id, want := range tc.reasons {
				if got := v.Task(id).Status.PendingReason; got != want {
					t.Errorf("%s pending reason = %q, want %q", id, got, want)
				}
			}
			if got := reserved(v, "n1"); got.NanoCPUs > 4*cpu1 || got.MemoryBytes > 4*gib {
				t.Errorf("n1 overcommitted: %+v reserved by its active tasks", got)
			}
		})
	}
}

// reserved sums what the active tasks on a node reserve.
func reserved(v *View, nodeID string) api.Resources {
	var sum api.Resources
	for _, task := range v.TasksByNode(nodeID) {
		if task.Status.State.Active() {
			sum = sum.Add(v.ServiceSpec(task.ServiceID, task.SpecVersion).Resources.Reservations)
		}
	}
	return sum
}

// TestAssignSeesEntriesOfTheSameTransaction: entries applied together (a
// follower catching up, a leader's burst) share one transaction. Each
// assignment counts what earlier entries of it bound to the node, freed on
// it or deleted from it, exactly as when the entries come one by one. On
// the fixture n1 has 4 CPUs and 4 GiB of which t3 holds 1 and 1.
func TestAssignSeesEntriesOfTheSameTransaction(t *testing.T) {
	wide := globalService("svc-wide", 2*cpu1, gib)
	cmds := []Command{
		CreateService{Service: wide},
		WriteTasks{Create: []*api.Task{namedTask("w1", wide, "n1", api.TaskNew), namedTask("w2", wide, "n1", api.TaskNew),
			namedTask("w3", wide, "n1", api.TaskNew)}, At: t0},
		AssignTasks{Assignments: []Assignment{{"w1", "n1"}}, At: t0},
		// n1 now holds 3 CPUs: w2 does not fit.
		AssignTasks{Assignments: []Assignment{{"w2", "n1"}}, At: t0},
		// t3 ends and w1 is deleted: 4 CPUs free, w2 and w3 fit.
		UpdateTaskStatus{NodeID: "n1", Updates: []TaskStatusUpdate{{TaskID: "t3", Status: api.TaskStatus{State: api.TaskComplete}}}, At: t0},
		WriteTasks{Delete: []string{"w1"}, At: t0},
		AssignTasks{Assignments: []Assignment{{"w2", "n1"}, {"w3", "n1"}}, At: t0},
	}
	one, together := fixture(t), fixture(t)
	var oneByOne []any
	for _, c := range cmds {
		_, v, err := one.apply(0, c)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		oneByOne = append(oneByOne, v)
	}
	first := together.Read().Index() + 1
	entries := make([]entry, len(cmds))
	for i, c := range cmds {
		entries[i] = entry{index: first + uint64(i), cmd: c}
	}
	res := together.applyEntries(entries)
	for i, want := range oneByOne {
		if !reflect.DeepEqual(res[i].value, want) || res[i].err != nil {
			t.Errorf("entry %d (%T): together %+v (%v), one by one %+v", i, cmds[i], res[i].value, res[i].err, want)
		}
	}
	if r := res[3].value.(AssignResult); r.Assigned != 0 || len(r.Refused) != 1 {
		t.Errorf("w2 beside w1 and t3: %+v, want refused", r)
	}
	if r := res[6].value.(AssignResult); r.Assigned != 2 {
		t.Errorf("w2 and w3 once n1 is free: %+v, want both assigned", r)
	}
	if a, b := dump(t, one.Read()), dump(t, together.Read()); a != b {
		t.Errorf("states differ:\n%s\n%s", a, b)
	}
}
