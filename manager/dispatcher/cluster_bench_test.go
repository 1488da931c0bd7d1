package dispatcher_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
)

// BenchmarkAgentFailover: three managers (real Raft and gossip on
// loopback, default gossip timings) and three agents with fake runtimes
// run 6 replicas. One op kills the agent with the most replicas and
// measures until every replica runs again on the others, from the kill to
// the last replacement's running timestamp (as its agent reported it).
// The agent is then started again and the cluster settles, off the clock.
// Run with -benchtime=10x for the median of 10 kills.
func BenchmarkAgentFailover(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) { benchAgentFailover(b, tr.opts) })
	}
}

// transports are the two ways the benchmarks run, side by side: mutual
// TLS on every link (as shoal always runs) and the plaintext baseline.
var transports = []struct {
	name string
	opts managertest.Options
}{{"tls", managertest.Options{}}, {"plaintext", managertest.Options{Plaintext: true}}}

func benchAgentFailover(b *testing.B, opts managertest.Options) {
	rc := startRaftClusterWith(b, opts, 3)
	svc := rc.createService("web", 6)
	rc.waitRunning(svc, 6)
	var took, seen []time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		before := rc.waitRunning(svc, 6)
		victim := busiest(rc.agents, before)
		id := victim.nodeID()
		b.StartTimer()
		start := time.Now()
		victim.kill()
		after := rc.waitRunningOff(svc, 6, id)
		seen = append(seen, time.Since(start))
		b.StopTimer()
		last := start
		for _, t := range after {
			if t.Status.Timestamp.After(last) {
				last = t.Status.Timestamp
			}
		}
		took = append(took, last.Sub(start))
		victim.start()
		rc.waitNode(id, api.NodeReady)
		managertest.WaitFor(b, 20*time.Second, func() error { return containersRunning(rc.agents, 6) })
		b.StartTimer()
	}
	b.StopTimer()
	sortDurations(took)
	sortDurations(seen)
	b.ReportMetric(took[len(took)/2].Seconds(), "median_s")
	b.ReportMetric(took[len(took)-1].Seconds(), "max_s")
	b.ReportMetric(took[0].Seconds(), "min_s")
	// When the test saw all replicas running in the leader's state (it
	// polls every 10 ms): the reports' commit time included.
	b.ReportMetric(seen[len(seen)/2].Seconds(), "median_seen_s")
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}

// busiest returns the agent whose node runs the most of the tasks.
func busiest(agents []*testAgent, tasks []*api.Task) *testAgent {
	count := map[string]int{}
	for _, t := range tasks {
		count[t.NodeID]++
	}
	best := agents[0]
	for _, ta := range agents {
		if count[ta.nodeID()] > count[best.nodeID()] {
			best = ta
		}
	}
	if count[best.nodeID()] == 0 {
		panic(fmt.Sprintf("no agent runs any of %d tasks", len(tasks)))
	}
	return best
}
