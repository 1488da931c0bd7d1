package scheduler

import (
	"testing"

	"github.com/shoal-sched/shoal/api"
)

func TestSpread(t *testing.T) {
	runCases(t, []scheduleCase{
		{
			name:  "round robin over equal nodes, in ID order",
			nodes: infos(mkNode("n3", 4*cpu, 8*gib), mkNode("n1", 4*cpu, 8*gib), mkNode("n2", 4*cpu, 8*gib)),
			tasks: tasks("web", 6, 0, 0),
			want: map[string]string{
				"web-1": "n1", "web-2": "n2", "web-3": "n3",
				"web-4": "n1", "web-5": "n2", "web-6": "n3",
			},
		},
		{
			name: "fewest tasks of the service first, whatever else runs there",
			nodes: []NodeInfo{
				{Node: mkNode("n1", 8*cpu, 8*gib), Tasks: []*api.Task{running("r1", "web", 0, 0)}},
				{Node: mkNode("n2", 8*cpu, 8*gib), Tasks: []*api.Task{running("r2", "db", 0, 0), running("r3", "db", 0, 0), running("r4", "db", 0, 0)}},
			},
			tasks: tasks("web", 2, 0, 0),
			want:  map[string]string{"web-1": "n2", "web-2": "n1"},
		},
		{
			name: "then fewest tasks",
			nodes: []NodeInfo{
				{Node: mkNode("n1", 8*cpu, 8*gib), Tasks: []*api.Task{running("r1", "db", 0, 0), running("r2", "db", 0, 0)}},
				{Node: mkNode("n2", 8*cpu, 8*gib), Tasks: []*api.Task{running("r3", "db", 0, 0)}},
			},
			tasks: tasks("web", 1, 0, 0),
			want:  map[string]string{"web-1": "n2"},
		},
		{
			name:  "then most free memory, then most free CPU",
			nodes: infos(mkNode("n1", 8*cpu, 4*gib), mkNode("n2", 2*cpu, 8*gib), mkNode("n3", 4*cpu, 8*gib)),
			tasks: tasks("web", 3, cpu, gib),
			want:  map[string]string{"web-1": "n3", "web-2": "n2", "web-3": "n1"},
		},
		{
			name:  "a full node is passed over",
			nodes: infos(mkNode("n1", 8*cpu, 1*gib), mkNode("n2", 8*cpu, 4*gib)),
			tasks: tasks("web", 3, cpu, gib),
			want:  map[string]string{"web-1": "n2", "web-2": "n1", "web-3": "n2"},
		},
		{
			name:  "the default strategy is spread",
			nodes: infos(mkNode("n1", 8*cpu, 8*gib), mkNode("n2", 8*cpu, 8*gib)),
			tasks: tasks("web", 2, cpu, gib, strategy("")),
			want:  map[string]string{"web-1": "n1", "web-2": "n2"},
		},
		{
			name:  "an unknown strategy is refused",
			nodes: infos(mkNode("n1", 8*cpu, 8*gib)),
			tasks: tasks("web", 1, cpu, gib, strategy("random")),
			want:  map[string]string{"web-1": `!cannot place: invalid placement strategy "random": want spread or binpack`},
		},
	})
}

func TestBinpack(t *testing.T) {
	runCases(t, []scheduleCase{
		{
			name: "fullest node that fits first",
			nodes: []NodeInfo{
				{Node: mkNode("n1", 8*cpu, 8*gib), Tasks: []*api.Task{running("r1", "db", 0, 7*gib)}},
				{Node: mkNode("n2", 8*cpu, 8*gib), Tasks: []*api.Task{running("r2", "db", 0, 5*gib)}},
				{Node: mkNode("n3", 8*cpu, 8*gib), Tasks: []*api.Task{running("r3", "db", 0, 2*gib)}},
			},
			tasks: tasks("web", 5, 0, 2*gib, strategy(api.StrategyBinpack)),
			// n1 has 1 GiB free: never fits. n2 takes one (3 → 1), then n3
			// takes three (6 → 0), then nothing fits.
			want: map[string]string{
				"web-1": "n2", "web-2": "n3", "web-3": "n3", "web-4": "n3",
				"web-5": "!no suitable node (insufficient memory on 3 nodes)",
			},
		},
		{
			name:  "equal free memory: least free CPU, then node ID",
			nodes: infos(mkNode("n1", 8*cpu, 4*gib), mkNode("n2", 2*cpu, 4*gib), mkNode("n0", 2*cpu, 4*gib)),
			tasks: tasks("web", 3, cpu, 2*gib, strategy(api.StrategyBinpack)),
			want:  map[string]string{"web-1": "n0", "web-2": "n0", "web-3": "n2"},
		},
		{
			name:  "binpack still honours the replica cap",
			nodes: infos(mkNode("n1", 8*cpu, 4*gib), mkNode("n2", 8*cpu, 8*gib)),
			tasks: tasks("web", 3, 0, gib, strategy(api.StrategyBinpack), maxPerNode(2)),
			want:  map[string]string{"web-1": "n1", "web-2": "n1", "web-3": "n2"},
		},
	})
}

func TestSpreadPreference(t *testing.T) {
	zones := infos(
		mkNode("a1", 8*cpu, 8*gib, labels("zone", "a")),
		mkNode("a2", 8*cpu, 8*gib, labels("zone", "a")),
		mkNode("b1", 8*cpu, 8*gib, labels("zone", "b")),
		mkNode("x1", 8*cpu, 8*gib),
	)
	runCases(t, []scheduleCase{
		{
			name:  "balance across label values first; no label is a group of its own",
			nodes: zones,
			tasks: tasks("web", 6, 0, 0, preferences("spread=node.labels.zone")),
			want: map[string]string{
				"web-1": "a1", "web-2": "b1", "web-3": "x1",
				"web-4": "a2", "web-5": "b1", "web-6": "x1",
			},
		},
		{
			name: "tasks already in a zone count",
			nodes: []NodeInfo{
				{Node: zones[0].Node, Tasks: []*api.Task{running("r1", "web", 0, 0)}},
				{Node: zones[1].Node, Tasks: []*api.Task{running("r2", "web", 0, 0)}},
				{Node: zones[2].Node},
				{Node: zones[3].Node},
			},
			tasks: tasks("web", 4, 0, 0, preferences("spread=node.labels.zone")),
			want:  map[string]string{"web-1": "b1", "web-2": "x1", "web-3": "b1", "web-4": "x1"},
		},
		{
			name:  "a full zone is skipped",
			nodes: append(infos(mkNode("a1", 8*cpu, 1*gib, labels("zone", "a"))), zones[2:3]...),
			tasks: tasks("web", 3, 0, 2*gib, preferences("spread=node.labels.zone")),
			want:  map[string]string{"web-1": "b1", "web-2": "b1", "web-3": "b1"},
		},
		{
			name: "nested preferences",
			nodes: infos(
				mkNode("a-r1", 8*cpu, 8*gib, labels("zone", "a", "rack", "1")),
				mkNode("a-r2", 8*cpu, 8*gib, labels("zone", "a", "rack", "2")),
				mkNode("a-r2b", 8*cpu, 8*gib, labels("zone", "a", "rack", "2")),
				mkNode("b-r1", 8*cpu, 8*gib, labels("zone", "b", "rack", "1")),
			),
			tasks: tasks("web", 4, 0, 0, preferences("spread=node.labels.zone", "spread=node.labels.rack")),
			want:  map[string]string{"web-1": "a-r1", "web-2": "b-r1", "web-3": "a-r2", "web-4": "b-r1"},
		},
		{
			name:  "with constraints, only the candidates count",
			nodes: zones,
			tasks: tasks("web", 3, 0, 0, constraints("node.labels.zone!=b"), preferences("spread=node.labels.zone")),
			want:  map[string]string{"web-1": "a1", "web-2": "x1", "web-3": "a2"},
		},
		{
			name:  "an invalid preference is refused",
			nodes: zones,
			tasks: tasks("web", 1, 0, 0, preferences("spread=node.role")),
			want: map[string]string{
				"web-1": `!cannot place: preferences[0]: invalid placement preference "spread=node.role": cannot spread over "node.role": want node.labels.KEY`,
			},
		},
	})
}

func TestNamedNodeTasks(t *testing.T) {
	nodes := []NodeInfo{
		{Node: mkNode("n1", 8*cpu, 8*gib)},
		{Node: mkNode("n2", 8*cpu, 1*gib)},
		{Node: mkNode("n3", 8*cpu, 8*gib, avail(api.AvailabilityDrain))},
		{Node: mkNode("n4", 8*cpu, 8*gib, labels("zone", "b"))},
	}
	global := func(id, node string) *api.Task {
		return mkTask(id, "agent", cpu, 2*gib, onNode(node), constraints("node.labels.zone!=b"))
	}
	runCases(t, []scheduleCase{
		{
			name:  "each task is checked against its own node only",
			nodes: nodes,
			tasks: []*api.Task{global("g1", "n1"), global("g2", "n2"), global("g3", "n3"), global("g4", "n4"), global("g5", "gone")},
			want: map[string]string{
				"g1": "n1",
				"g2": "!node n2 not suitable (insufficient memory)",
				"g3": "!node n3 not suitable (node drained)",
				"g4": "!node n4 not suitable (constraint node.labels.zone!=b not met)",
				"g5": "!node gone is not in the cluster",
			},
		},
		{
			name: "a named task also listed on its node is counted once",
			nodes: []NodeInfo{{Node: mkNode("n1", 8*cpu, 3*gib), Tasks: []*api.Task{
				mkTask("g1", "agent", cpu, 2*gib, onNode("n1")),
			}}},
			tasks: []*api.Task{mkTask("g1", "agent", cpu, 2*gib, onNode("n1"), maxPerNode(1))},
			want:  map[string]string{"g1": "n1"},
		},
		{
			name:  "named tasks land before the rest of their group",
			nodes: infos(mkNode("n1", 8*cpu, 3*gib), mkNode("n2", 8*cpu, 2*gib)),
			tasks: []*api.Task{
				mkTask("t1", "web", 0, 2*gib),
				mkTask("t2", "web", 0, 2*gib, onNode("n1")),
			},
			want: map[string]string{"t2": "n1", "t1": "n2"},
		},
	})
}

func TestNoNodes(t *testing.T) {
	res := Schedule(nil, tasks("web", 2, 0, 0), embedded)
	checkOutcomes(t, res, map[string]string{
		"web-1": "!no suitable node (the cluster has no nodes)",
		"web-2": "!no suitable node (the cluster has no nodes)",
	})
	if res := Schedule(infos(mkNode("n1", cpu, gib)), nil, embedded); len(res.Decisions)+len(res.Unplaced) != 0 {
		t.Fatalf("no tasks gave %+v", res)
	}
}

// TestSpecsLookedUpByVersion: tasks carry no spec; Schedule reads each
// task's spec through specOf, by service and version. A running task of
// an old version holds that version's reservation; a task whose version is
// unknown is not placed, and says why.
func TestSpecsLookedUpByVersion(t *testing.T) {
	specs := map[uint64]*api.ServiceSpec{
		1: {Resources: api.ResourceRequirements{Reservations: api.Resources{NanoCPUs: 3 * cpu}}},
		2: {Resources: api.ResourceRequirements{Reservations: api.Resources{NanoCPUs: cpu}}},
	}
	byVersion := func(t *api.Task) *api.ServiceSpec { return specs[t.SpecVersion] }
	bare := func(id string, version uint64, mods ...func(*api.Task)) *api.Task {
		t := &api.Task{ID: id, ServiceID: "web", ServiceName: "web", SpecVersion: version,
			DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskPending}}
		for _, m := range mods {
			m(t)
		}
		return t
	}
	nodes := []NodeInfo{
		{Node: mkNode("n1", 4*cpu, gib), Tasks: []*api.Task{bare("old", 1, inState(api.TaskRunning), onNode("n1"))}},
	}
	res := Schedule(nodes, []*api.Task{bare("a", 2, slot(1)), bare("b", 2, slot(2)), bare("lost", 9, slot(3))}, byVersion)
	checkOutcomes(t, res, map[string]string{
		"a":    "n1",
		"b":    "!no suitable node (insufficient CPU on 1 node)",
		"lost": "!cannot place: spec version 9 of the service is not known",
	})
}
