package scheduler

import (
	"fmt"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

const (
	cpu = int64(1e9)     // one CPU in NanoCPUs
	gib = int64(1 << 30) // one GiB in bytes
)

// mkNode is a ready, active worker with the given resources.
func mkNode(id string, cpus, mem int64, mods ...func(*api.Node)) *api.Node {
	n := &api.Node{
		ID: id, Hostname: id, Role: api.RoleWorker,
		Availability: api.AvailabilityActive, Status: api.NodeReady,
		Resources: api.Resources{NanoCPUs: cpus, MemoryBytes: mem},
	}
	for _, m := range mods {
		m(n)
	}
	return n
}

func labels(kv ...string) func(*api.Node) {
	return func(n *api.Node) {
		n.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func status(s api.NodeStatus) func(*api.Node) { return func(n *api.Node) { n.Status = s } }

func avail(a api.NodeAvailability) func(*api.Node) { return func(n *api.Node) { n.Availability = a } }

// embedded is the SpecOf of these tests: a task's spec is the copy it
// carries, set by mkTask and its options (so one test can also give tasks
// of one service and version different placements).
func embedded(t *api.Task) *api.ServiceSpec { return t.Spec }

// mkTask is a new task of service svc reserving cpus and mem.
func mkTask(id, svc string, cpus, mem int64, mods ...func(*api.Task)) *api.Task {
	t := &api.Task{
		ID: id, ServiceID: svc, ServiceName: svc, SpecVersion: 1,
		DesiredState: api.TaskRunning,
		Status:       api.TaskStatus{State: api.TaskPending}, Spec: &api.ServiceSpec{},
	}
	t.Spec.Resources.Reservations = api.Resources{NanoCPUs: cpus, MemoryBytes: mem}
	for _, m := range mods {
		m(t)
	}
	return t
}

func constraints(c ...string) func(*api.Task) {
	return func(t *api.Task) { t.Spec.Placement.Constraints = c }
}

func preferences(p ...string) func(*api.Task) {
	return func(t *api.Task) { t.Spec.Placement.Preferences = p }
}

func maxPerNode(m uint64) func(*api.Task) {
	return func(t *api.Task) { t.Spec.Placement.MaxReplicasPerNode = m }
}

func strategy(s api.PlacementStrategy) func(*api.Task) {
	return func(t *api.Task) { t.Spec.Placement.Strategy = s }
}

func onNode(id string) func(*api.Task) { return func(t *api.Task) { t.NodeID = id } }

func inState(s api.TaskState) func(*api.Task) { return func(t *api.Task) { t.Status.State = s } }

func desired(s api.TaskState) func(*api.Task) { return func(t *api.Task) { t.DesiredState = s } }

func slot(n uint64) func(*api.Task) { return func(t *api.Task) { t.Slot = n } }

// running is a task already running on a node.
func running(id, svc string, cpus, mem int64, mods ...func(*api.Task)) *api.Task {
	return mkTask(id, svc, cpus, mem, append([]func(*api.Task){inState(api.TaskRunning)}, mods...)...)
}

// tasks makes n tasks svc-1..svc-n in slots 1..n.
func tasks(svc string, n int, cpus, mem int64, mods ...func(*api.Task)) []*api.Task {
	out := make([]*api.Task, n)
	for i := range out {
		out[i] = mkTask(fmt.Sprintf("%s-%d", svc, i+1), svc, cpus, mem, append([]func(*api.Task){slot(uint64(i + 1))}, mods...)...)
	}
	return out
}

func infos(nodes ...*api.Node) []NodeInfo {
	out := make([]NodeInfo, len(nodes))
	for i, n := range nodes {
		out[i] = NodeInfo{Node: n}
	}
	return out
}

// outcomes maps each task ID to its node ID, or to "!" + the reason when
// it was not placed, failing the test if a task is reported twice.
func outcomes(t *testing.T, res Result) map[string]string {
	t.Helper()
	out := make(map[string]string)
	put := func(id, v string) {
		if prev, dup := out[id]; dup {
			t.Fatalf("task %s reported twice: %q and %q", id, prev, v)
		}
		out[id] = v
	}
	for _, d := range res.Decisions {
		put(d.TaskID, d.NodeID)
	}
	for _, u := range res.Unplaced {
		put(u.TaskID, "!"+u.Reason)
	}
	return out
}

// checkOutcomes compares a pass's result with want (task ID → node ID or
// "!" + reason), which must name every task.
func checkOutcomes(t *testing.T, res Result, want map[string]string) {
	t.Helper()
	got := outcomes(t, res)
	for id, w := range want {
		if got[id] != w {
			t.Errorf("task %s: got %q, want %q", id, got[id], w)
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("unexpected task %s: %q", id, g)
		}
	}
}
