package scheduler

import (
	"testing"

	"github.com/shoal-sched/shoal/api"
)

type scheduleCase struct {
	name  string
	nodes []NodeInfo
	tasks []*api.Task
	want  map[string]string // task ID → node ID, or "!" + reason
}

func runCases(t *testing.T, cases []scheduleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkOutcomes(t, Schedule(tc.nodes, tc.tasks, embedded), tc.want)
		})
	}
}

func TestFilterReady(t *testing.T) {
	runCases(t, []scheduleCase{
		{
			name: "only the ready node takes the task",
			nodes: infos(
				mkNode("n1", 4*cpu, 8*gib, status(api.NodeDown)),
				mkNode("n2", 4*cpu, 8*gib, status(api.NodeUnknown)),
				mkNode("n3", 1*cpu, 1*gib),
			),
			tasks: []*api.Task{mkTask("t1", "web", 0, 0)},
			want:  map[string]string{"t1": "n3"},
		},
		{
			name: "no ready node",
			nodes: infos(
				mkNode("n1", 4*cpu, 8*gib, status(api.NodeDown)),
				mkNode("n2", 4*cpu, 8*gib, status(api.NodeDown)),
				mkNode("n3", 4*cpu, 8*gib, status("")),
			),
			tasks: []*api.Task{mkTask("t1", "web", 0, 0)},
			want:  map[string]string{"t1": "!no suitable node (node down on 2 nodes; node not ready on 1 node)"},
		},
		{
			name: "a restarting node takes no new task",
			nodes: infos(
				mkNode("n1", 4*cpu, 8*gib, status(api.NodeRestarting)),
				mkNode("n2", 4*cpu, 8*gib, status(api.NodeDown)),
			),
			tasks: []*api.Task{mkTask("t1", "web", 0, 0)},
			want:  map[string]string{"t1": "!no suitable node (node down on 1 node; node restarting on 1 node)"},
		},
	})
}

func TestFilterAvailability(t *testing.T) {
	runCases(t, []scheduleCase{
		{
			name: "pause and drain take no new tasks",
			nodes: infos(
				mkNode("n1", 4*cpu, 8*gib, avail(api.AvailabilityPause)),
				mkNode("n2", 4*cpu, 8*gib, avail(api.AvailabilityDrain)),
				mkNode("n3", 1*cpu, 1*gib),
			),
			tasks: tasks("web", 2, 0, 0),
			want:  map[string]string{"web-1": "n3", "web-2": "n3"},
		},
		{
			name:  "empty availability is active",
			nodes: infos(mkNode("n1", 1*cpu, 1*gib, avail(""))),
			tasks: []*api.Task{mkTask("t1", "web", 0, 0)},
			want:  map[string]string{"t1": "n1"},
		},
		{
			name: "no active node",
			nodes: infos(
				mkNode("n1", 4*cpu, 8*gib, avail(api.AvailabilityPause)),
				mkNode("n2", 4*cpu, 8*gib, avail(api.AvailabilityDrain)),
				mkNode("n3", 4*cpu, 8*gib, avail(api.AvailabilityDrain)),
				mkNode("n4", 4*cpu, 8*gib, avail("sleeping")),
			),
			tasks: []*api.Task{mkTask("t1", "web", 0, 0)},
			want:  map[string]string{"t1": "!no suitable node (node drained on 2 nodes; node paused on 1 node; node not active on 1 node)"},
		},
	})
}

func TestFilterResources(t *testing.T) {
	runCases(t, []scheduleCase{
		{
			name:  "memory",
			nodes: infos(mkNode("n1", 8*cpu, 1*gib), mkNode("n2", 1*cpu, 4*gib)),
			tasks: []*api.Task{mkTask("t1", "web", cpu/2, 2*gib)},
			want:  map[string]string{"t1": "n2"},
		},
		{
			name:  "cpu",
			nodes: infos(mkNode("n1", 1*cpu, 64*gib), mkNode("n2", 4*cpu, 1*gib)),
			tasks: []*api.Task{mkTask("t1", "web", 2*cpu, gib/2)},
			want:  map[string]string{"t1": "n2"},
		},
		{
			name: "tasks on the node hold their reservations",
			nodes: []NodeInfo{
				{Node: mkNode("n1", 8*cpu, 8*gib), Tasks: []*api.Task{running("r1", "db", cpu, 7*gib)}},
				{Node: mkNode("n2", 8*cpu, 2*gib)},
			},
			tasks: []*api.Task{mkTask("t1", "web", cpu, 2*gib)},
			want:  map[string]string{"t1": "n2"},
		},
		{
			name: "assigned but not started tasks hold their reservations",
			nodes: []NodeInfo{
				{Node: mkNode("n1", 8*cpu, 8*gib), Tasks: []*api.Task{
					mkTask("a1", "db", cpu, 4*gib, onNode("n1"), inState(api.TaskAssigned)),
					mkTask("a2", "db", cpu, 3*gib, onNode("n1"), inState(api.TaskPending)),
				}},
			},
			tasks: []*api.Task{mkTask("t1", "web", cpu, 2*gib)},
			want:  map[string]string{"t1": "!no suitable node (insufficient memory on 1 node)"},
		},
		{
			name: "a task told to shut down holds its reservation until it stops",
			nodes: []NodeInfo{
				{Node: mkNode("n1", 8*cpu, 8*gib), Tasks: []*api.Task{
					running("r1", "db", cpu, 7*gib, desired(api.TaskShutdown)),
				}},
			},
			tasks: []*api.Task{mkTask("t1", "web", cpu, 2*gib)},
			want:  map[string]string{"t1": "!no suitable node (insufficient memory on 1 node)"},
		},
		{
			name: "terminal tasks hold nothing",
			nodes: []NodeInfo{
				{Node: mkNode("n1", 8*cpu, 8*gib), Tasks: []*api.Task{
					mkTask("f1", "db", 8*cpu, 8*gib, inState(api.TaskFailed)),
					mkTask("c1", "db", 8*cpu, 8*gib, inState(api.TaskComplete)),
				}},
			},
			tasks: []*api.Task{mkTask("t1", "web", 8*cpu, 8*gib)},
			want:  map[string]string{"t1": "n1"},
		},
		{
			name:  "tasks placed in the same pass use up the node",
			nodes: infos(mkNode("n1", 8*cpu, 5*gib)),
			tasks: tasks("web", 3, cpu, 2*gib),
			want: map[string]string{
				"web-1": "n1", "web-2": "n1",
				"web-3": "!no suitable node (insufficient memory on 1 node)",
			},
		},
		{
			name:  "an exact fit fits",
			nodes: infos(mkNode("n1", 2*cpu, 2*gib)),
			tasks: tasks("web", 2, cpu, gib),
			want:  map[string]string{"web-1": "n1", "web-2": "n1"},
		},
		{
			name: "cpu, memory and both",
			nodes: infos(
				mkNode("n1", 1*cpu, 8*gib),
				mkNode("n2", 8*cpu, 1*gib),
				mkNode("n3", 1*cpu, 1*gib),
				mkNode("n4", 1*cpu, 1*gib),
			),
			tasks: []*api.Task{mkTask("t1", "web", 2*cpu, 2*gib)},
			want: map[string]string{
				"t1": "!no suitable node (insufficient CPU and memory on 2 nodes; insufficient CPU on 1 node; insufficient memory on 1 node)",
			},
		},
		{
			name: "an overcommitted node takes nothing, even a task reserving nothing",
			nodes: []NodeInfo{
				{Node: mkNode("n1", 1*cpu, 1*gib), Tasks: []*api.Task{running("r1", "db", cpu, 2*gib)}},
			},
			tasks: []*api.Task{mkTask("t1", "web", 0, 0)},
			want:  map[string]string{"t1": "!no suitable node (insufficient memory on 1 node)"},
		},
	})
}

func TestFilterConstraints(t *testing.T) {
	zones := infos(
		mkNode("a1", 4*cpu, 4*gib, labels("zone", "a")),
		mkNode("a2", 4*cpu, 4*gib, labels("zone", "a")),
		mkNode("b1", 4*cpu, 4*gib, labels("zone", "b")),
		mkNode("m1", 4*cpu, 4*gib, func(n *api.Node) { n.Role = api.RoleManager }),
	)
	runCases(t, []scheduleCase{
		{
			name:  "label equal",
			nodes: zones,
			tasks: tasks("web", 4, 0, 0, constraints("node.labels.zone==a")),
			want:  map[string]string{"web-1": "a1", "web-2": "a2", "web-3": "a1", "web-4": "a2"},
		},
		{
			name:  "label not equal matches nodes without the label",
			nodes: zones,
			tasks: tasks("web", 2, 0, 0, constraints("node.labels.zone!=a")),
			want:  map[string]string{"web-1": "b1", "web-2": "m1"},
		},
		{
			name:  "role and hostname together",
			nodes: zones,
			tasks: tasks("web", 2, 0, 0, constraints("node.role==worker", "node.hostname!=a1")),
			want:  map[string]string{"web-1": "a2", "web-2": "b1"},
		},
		{
			name:  "node id",
			nodes: zones,
			tasks: tasks("web", 2, 0, 0, constraints("node.id==b1")),
			want:  map[string]string{"web-1": "b1", "web-2": "b1"},
		},
		{
			name:  "each node is charged to the first constraint it fails",
			nodes: zones,
			tasks: tasks("web", 1, 0, 0, constraints("node.role==worker", "node.labels.zone==c")),
			want: map[string]string{
				"web-1": "!no suitable node (constraint node.labels.zone==c not met on 3 nodes; constraint node.role==worker not met on 1 node)",
			},
		},
		{
			name:  "an invalid constraint names itself",
			nodes: zones,
			tasks: tasks("web", 2, 0, 0, constraints("node.labels.zone==a", "node.zone==a")),
			want: map[string]string{
				"web-1": `!cannot place: constraints[1]: invalid placement constraint "node.zone==a": unknown field "node.zone": want node.id, node.hostname, node.role or node.labels.KEY`,
				"web-2": `!cannot place: constraints[1]: invalid placement constraint "node.zone==a": unknown field "node.zone": want node.id, node.hostname, node.role or node.labels.KEY`,
			},
		},
	})
}

func TestFilterMaxReplicasPerNode(t *testing.T) {
	runCases(t, []scheduleCase{
		{
			name:  "one per node",
			nodes: infos(mkNode("n1", 8*cpu, 8*gib), mkNode("n2", 8*cpu, 8*gib)),
			tasks: tasks("web", 3, 0, 0, maxPerNode(1)),
			want: map[string]string{
				"web-1": "n1", "web-2": "n2",
				"web-3": "!no suitable node (max replicas per node (1) reached on 2 nodes)",
			},
		},
		{
			name: "tasks already on the node count, other services do not",
			nodes: []NodeInfo{
				{Node: mkNode("n1", 8*cpu, 8*gib), Tasks: []*api.Task{running("r1", "web", 0, 0), running("r2", "web", 0, 0)}},
				{Node: mkNode("n2", 8*cpu, 8*gib), Tasks: []*api.Task{running("r3", "db", 0, 0), running("r4", "db", 0, 0)}},
			},
			tasks: tasks("web", 3, 0, 0, maxPerNode(2)),
			want: map[string]string{
				"web-1": "n2", "web-2": "n2",
				"web-3": "!no suitable node (max replicas per node (2) reached on 2 nodes)",
			},
		},
		{
			name: "a task being replaced does not count against the cap",
			nodes: []NodeInfo{
				{Node: mkNode("n1", 8*cpu, 8*gib), Tasks: []*api.Task{running("r1", "web", 0, 0, desired(api.TaskShutdown))}},
			},
			tasks: tasks("web", 1, 0, 0, maxPerNode(1)),
			want:  map[string]string{"web-1": "n1"},
		},
	})
}

func TestReasons(t *testing.T) {
	runCases(t, []scheduleCase{
		{
			name: "most nodes first",
			nodes: infos(
				mkNode("a1", 8*cpu, 1*gib, labels("zone", "a")),
				mkNode("a2", 8*cpu, 1*gib, labels("zone", "a")),
				mkNode("a3", 8*cpu, 1*gib, labels("zone", "a")),
				mkNode("b1", 8*cpu, 8*gib, labels("zone", "b")),
				mkNode("b2", 8*cpu, 8*gib, labels("zone", "b")),
			),
			tasks: tasks("web", 1, 0, 2*gib, constraints("node.labels.zone==a")),
			want: map[string]string{
				"web-1": "!no suitable node (insufficient memory on 3 nodes; constraint node.labels.zone==a not met on 2 nodes)",
			},
		},
		{
			name: "equal counts in pipeline order",
			nodes: infos(
				mkNode("a1", 8*cpu, 1*gib, labels("zone", "a")),
				mkNode("b1", 8*cpu, 8*gib, labels("zone", "b")),
				mkNode("d1", 8*cpu, 8*gib, status(api.NodeDown)),
			),
			tasks: tasks("web", 1, 0, 2*gib, constraints("node.labels.zone==a")),
			want: map[string]string{
				"web-1": "!no suitable node (node down on 1 node; constraint node.labels.zone==a not met on 1 node; insufficient memory on 1 node)",
			},
		},
		{
			name: "the reason is the state when the task was tried",
			nodes: infos(
				mkNode("n1", 8*cpu, 2*gib),
				mkNode("n2", 8*cpu, 2*gib),
				mkNode("n3", 8*cpu, 8*gib, avail(api.AvailabilityPause)),
			),
			tasks: tasks("web", 4, 0, 2*gib, maxPerNode(1)),
			want: map[string]string{
				"web-1": "n1", "web-2": "n2",
				"web-3": "!no suitable node (insufficient memory on 2 nodes; node paused on 1 node)",
				"web-4": "!no suitable node (insufficient memory on 2 nodes; node paused on 1 node)",
			},
		},
	})
}
