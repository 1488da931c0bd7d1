package raftstore

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkApply: a three-member loopback cluster with fsync on (raft-wal's
// default), 16 goroutines applying CreateService commands to the leader.
func BenchmarkApply(b *testing.B) {
	c := newCluster(b, 3, nil)
	leader := c.nodes[c.waitLeader()]
	var seq atomic.Int64
	b.SetParallelism(max(1, 16/runtimeProcs()))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			svc := testService(fmt.Sprintf("id-%d", i), fmt.Sprintf("svc-%d", i), 3)
			if _, err := leader.Apply(b.Context(), CreateService{Service: svc}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
}

// BenchmarkFailover: kill the leader of a three-member loopback cluster
// (Close, no hand-over) and time until a write succeeds again, retrying on
// the survivors as a client would. Ten kills per iteration; reports the
// median and the worst.
func BenchmarkFailover(b *testing.B) {
	c := newCluster(b, 3, nil)
	var times []time.Duration
	b.ResetTimer()
	for range b.N {
		for range 10 {
			times = append(times, killLeader(b, c, len(times)))
		}
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "median_ms")
	b.ReportMetric(float64(times[len(times)-1].Milliseconds()), "max_ms")
}

// killLeader kills the leader, waits for the next successful write, then
// brings the killed member back and waits until it has caught up.
func killLeader(b *testing.B, c *testCluster, round int) time.Duration {
	leader := c.waitLeader()
	c.kill(leader)
	start := time.Now()
	name := fmt.Sprintf("after-kill-%d", round)
	deadline := start.Add(30 * time.Second)
	for done := false; !done; {
		if time.Now().After(deadline) {
			b.Fatalf("no write succeeded within 30s of killing m%d", leader)
		}
		for _, n := range c.nodes {
			if n == nil {
				continue
			}
			_, err := n.Apply(b.Context(), CreateService{Service: testService("id-"+name, name, 1)})
			if err == nil {
				done = true
				break
			}
			if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) {
				b.Fatalf("apply after kill: %v", err)
			}
		}
		if !done {
			time.Sleep(5 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	c.restart(leader, nil)
	c.waitService(leader, name)
	b.StartTimer()
	return elapsed
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkSteadyElections: a three-member loopback cluster left for 15 s
// with a write every 100 ms; reports the elections that happened after the
// first (there should be none: run it with the host's cores busy to see
// whether the timeouts leave enough room).
func BenchmarkSteadyElections(b *testing.B) {
	for range b.N {
		c := newCluster(b, 3, nil)
		leader := c.nodes[c.waitLeader()]
		term := leader.Stats().Term
		end := time.Now().Add(15 * time.Second)
		var failed int
		for i := 0; time.Now().Before(end); i++ {
			n := c.nodes[c.waitLeader()]
			if _, err := n.Apply(b.Context(), CreateService{Service: testService(fmt.Sprintf("id-%d", i), fmt.Sprintf("s-%d", i), 1)}); err != nil {
				failed++
			}
			time.Sleep(100 * time.Millisecond)
		}
		var last uint64
		for _, n := range c.nodes {
			last = max(last, n.Stats().Term)
		}
		b.ReportMetric(float64(last-term), "elections")
		b.ReportMetric(float64(failed), "failed_writes")
		c.closeAll()
	}
}
