package scheduler

import "github.com/shoal-sched/shoal/api"

// Schedule places tasks (each carries its service's spec: reservations,
// placement constraints, preferences, max per node, strategy) on nodes.
// Decisions take account of each other: a node's free resources shrink as
// tasks are placed on it in the same pass. Same input, same output.
func Schedule(nodes []NodeInfo, tasks []*api.Task) Result {
	panic("scheduler: not built yet")
}
