package scheduler

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// benchSize is one benchmark cluster: numTasks tasks of numServices
// services, spread unless binpack, over numNodes nodes.
type benchSize struct {
	name                            string
	numNodes, numTasks, numServices int
	binpackByZone                   bool // binpack within a spread=node.labels.zone preference
}

var benchSizes = []benchSize{
	{name: "nodes=1000/tasks=10000", numNodes: 1000, numTasks: 10000, numServices: 10},
	{name: "nodes=10000/tasks=100000", numNodes: 10000, numTasks: 100000, numServices: 100},
	// Every task its own group: the filters and the heap are rebuilt for
	// each task, the case the index helps least.
	{name: "nodes=10000/tasks=10000/services=10000", numNodes: 10000, numTasks: 10000, numServices: 10000},
	{name: "nodes=1000/tasks=10000/binpack-by-zone", numNodes: 1000, numTasks: 10000, numServices: 10, binpackByZone: true},
}

// benchCluster is a cluster of 16-CPU, 64 GiB nodes in four zones (a few
// drained or down, a tenth already running four big tasks) and tasks with
// reservations and one constraint that rules out a quarter of the nodes.
// Everything fits.
func benchCluster(size benchSize) ([]NodeInfo, []*api.Task) {
	numNodes, numTasks := size.numNodes, size.numTasks
	nodes := make([]NodeInfo, numNodes)
	for i := range nodes {
		n := mkNode(fmt.Sprintf("node-%05d", i), 16*cpu, 64*gib,
			labels("zone", fmt.Sprintf("z%d", i%4), "rack", fmt.Sprintf("r%d", i%20)))
		switch i % 100 {
		case 17:
			n.Availability = api.AvailabilityDrain
		case 42:
			n.Status = api.NodeDown
		}
		nodes[i].Node = n
		if i%10 == 3 {
			for k := range 4 {
				t := running(fmt.Sprintf("base-%d-%d", i, k), "base", cpu, 4*gib)
				t.NodeID = n.ID
				nodes[i].Tasks = append(nodes[i].Tasks, t)
			}
		}
	}
	services := size.numServices
	out := make([]*api.Task, 0, numTasks)
	for k := range numTasks {
		svc := k % services
		t := mkTask(fmt.Sprintf("task-%07d", k), fmt.Sprintf("svc-%04d", svc),
			int64(1+svc%4)*cpu/10, int64(1+svc%8)*128<<20,
			slot(uint64(k/services+1)), constraints("node.labels.zone!=z3"))
		if size.binpackByZone {
			t.Spec.Placement.Strategy = api.StrategyBinpack
			t.Spec.Placement.Preferences = []string{"spread=node.labels.zone"}
		}
		out = append(out, t)
	}
	return nodes, out
}

func benchSchedule(b *testing.B, schedule func([]NodeInfo, []*api.Task) Result) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			nodes, tasks := benchCluster(size)
			b.ReportAllocs()
			var res Result
			cpuBefore := cpuTime(b)
			for b.Loop() {
				res = schedule(nodes, tasks)
			}
			// The process's CPU time (garbage collection included) next to
			// the wall time: on a shared machine it moves far less.
			b.ReportMetric(float64((cpuTime(b)-cpuBefore).Nanoseconds())/float64(b.N), "cpu-ns/op")
			if len(res.Decisions) != len(tasks) {
				b.Fatalf("placed %d of %d tasks; first reason: %+v", len(res.Decisions), len(tasks), res.Unplaced[0])
			}
			b.ReportMetric(float64(len(res.Decisions))*float64(b.N)/b.Elapsed().Seconds(), "placements/s")
		})
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkSchedule(b *testing.B) {
	benchSchedule(b, func(n []NodeInfo, t []*api.Task) Result { return Schedule(n, t, embedded) })
}

// BenchmarkScheduleNaive is the baseline: every filter on every node for
// every task.
func BenchmarkScheduleNaive(b *testing.B) { benchSchedule(b, scheduleNaive) }
