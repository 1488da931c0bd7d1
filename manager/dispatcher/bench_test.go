package dispatcher_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/raftstore"
)

func heapMiB() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

// BenchmarkManyAgentsLocal: 1,000 agents (fake runtimes, real sessions
// over loopback gRPC, no gossip) on one dispatcher over a LocalApplier
// state; one op creates a 10,000-replica service and waits until every
// replica runs. It measures the dispatcher and the agents without Raft.
func BenchmarkManyAgentsLocal(b *testing.B) {
	const agents, replicas = 1000, 10000
	s := newSingle(b, 5*time.Second)
	s.addAgents(agents)
	managertest.WaitFor(b, 60*time.Second, func() error {
		ready := 0
		for _, n := range s.state.Read().Nodes() {
			if n.Status == api.NodeReady {
				ready++
			}
		}
		if ready != agents {
			return fmt.Errorf("%d of %d nodes ready", ready, agents)
		}
		return nil
	})
	s.startOrchestrator()
	idle := heapMiB()
	b.ResetTimer()
	for i := range b.N {
		svc := s.createService(fmt.Sprintf("web%d", i), replicas)
		managertest.WaitFor(b, 120*time.Second, func() error { return countRunning(s.state.Read(), svc, replicas) })
		b.StopTimer()
		b.ReportMetric(heapMiB(), "heap_MiB")
		b.ReportMetric(heapMiB()-idle, "heap_delta_MiB")
		if _, err := s.apply.Apply(b.Context(), raftstore.RemoveService{ID: svc, At: time.Now()}); err != nil {
			b.Fatal(err)
		}
		managertest.WaitFor(b, 120*time.Second, func() error { return countActive(s, agents) })
		b.StartTimer()
	}
}

func countRunning(v *raftstore.View, svc string, want int) error {
	n := 0
	for _, t := range v.TasksByService(svc) {
		if t.Status.State == api.TaskRunning {
			n++
		}
	}
	if n != want {
		return fmt.Errorf("%d of %d tasks running", n, want)
	}
	return nil
}

func countActive(s *single, _ int) error {
	n := 0
	for _, ta := range s.agents {
		n += len(ta.rt.Running())
	}
	if n != 0 {
		return fmt.Errorf("%d containers still run", n)
	}
	return nil
}
