// Package scheduler decides where tasks run. It is pure and deterministic:
// given nodes and tasks it returns placements and, for each task it cannot
// place, a reason a person can act on. No I/O, no goroutines, no clock.
package scheduler

import "github.com/shoal-sched/shoal/api"

// NodeInfo is a node with the tasks already on it (non-terminal tasks that
// hold its resources), as the caller read them from the state.
type NodeInfo struct {
	Node *api.Node
	// Tasks are the tasks on the node. With Load nil, they are all of
	// them and Schedule sums their holdings itself.
	Tasks []*api.Task
	// Load, when set, is the sum of the holdings of every task on the
	// node (see Holds), kept by the caller; Tasks then need only list the
	// tasks of the services being placed, which Schedule counts per
	// service (spread, max per node) and not again in the load. It must
	// not count a task being placed. Schedule does not change it.
	Load *Load
}

// SpecOf returns the spec a task runs: its service's spec at the task's
// spec version (tasks do not carry a copy). nil means it is not known; such
// a task holds no resources and is not placed.
type SpecOf func(t *api.Task) *api.ServiceSpec

// Decision places one task on one node.
type Decision struct {
	TaskID string
	NodeID string
}

// Unplaced is a task that fits nowhere, with the reason, e.g.
// "no suitable node (insufficient memory on 3 nodes; constraint
// node.labels.zone==a not met on 2 nodes)".
type Unplaced struct {
	TaskID string
	Reason string
}

// Result is the outcome of one scheduling pass.
type Result struct {
	Decisions []Decision
	Unplaced  []Unplaced
}
