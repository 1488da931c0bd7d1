package membership

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

const benchClusterSize = 10

// BenchmarkFailureDetection kills one member per iteration (Close, no
// leave) in a 10-member loopback cluster with the default LAN settings, and
// measures the time from the kill to the Fail event: at one observer (as the
// leader would see it) and at every survivor. The killed member is replaced
// before the next iteration so the cluster keeps its size. Run it with a
// fixed count, e.g. -benchtime=10x, and without -race. false-fails counts
// live members the observer saw declared dead during the run.
func BenchmarkFailureDetection(b *testing.B) {
	benchRemoval(b, EventFail, func(b *testing.B, nd *node) {
		if err := nd.Close(); err != nil {
			b.Fatalf("Close: %v", err)
		}
	})
}

// BenchmarkGracefulLeave is the same with Leave then Close. It shows how
// fast a leave is reported and, in misreported, how many survivors saw a
// Fail instead (the Leaving flag had not reached them before the leave).
func BenchmarkGracefulLeave(b *testing.B) {
	benchRemoval(b, EventLeave, func(b *testing.B, nd *node) {
		if err := nd.Leave(5 * time.Second); err != nil {
			b.Fatalf("Leave: %v", err)
		}
		if err := nd.Close(); err != nil {
			b.Fatalf("Close: %v", err)
		}
	})
}

func benchRemoval(b *testing.B, want EventType, remove func(*testing.B, *node)) {
	nodes := startCluster(b, benchClusterSize)
	observer := nodes[0]
	var toObserver, toAll []time.Duration
	misreported := 0
	next := benchClusterSize
	for i := 0; b.Loop(); i++ {
		slot := 1 + i%(benchClusterSize-1)
		victim := nodes[slot]
		id := victim.LocalMeta().NodeID
		start := time.Now()
		remove(b, victim)
		var last time.Time
		for _, nd := range nodes {
			if nd == victim {
				continue
			}
			at, typ := waitGone(b, nd, id, start)
			if typ != want {
				misreported++
			}
			last = latest(last, at)
			if nd == observer {
				toObserver = append(toObserver, at.Sub(start))
			}
		}
		toAll = append(toAll, last.Sub(start))

		b.StopTimer()
		nodes[slot] = startNode(b, testConfig(b, fmt.Sprintf("n%d", next), observer.Addr()))
		next++
		waitConverged(b, nodes, benchClusterSize)
		b.StartTimer()
	}
	b.ReportMetric(ms(median(toObserver)), "median-ms")
	b.ReportMetric(ms(slices.Max(toObserver)), "worst-ms")
	b.ReportMetric(ms(median(toAll)), "all-median-ms")
	b.ReportMetric(ms(slices.Max(toAll)), "all-worst-ms")
	b.ReportMetric(float64(len(toObserver)), "removals")
	b.ReportMetric(float64(misreported), "misreported")
	// Fail events the observer saw beyond the removals: live members
	// declared dead (they rejoin), i.e. false alarms under the current load.
	fails := observer.rec.count(EventFail)
	if want == EventFail {
		fails -= len(toObserver)
	}
	b.ReportMetric(float64(fails), "false-fails")
}

// waitGone waits until nd reports id as left or failed after t0.
func waitGone(b *testing.B, nd *node, id string, t0 time.Time) (time.Time, EventType) {
	b.Helper()
	var at time.Time
	var typ EventType
	waitFor(b, nd.LocalMeta().NodeID+" reports "+id+" gone", func() bool {
		for _, t := range []EventType{EventFail, EventLeave} {
			if a, ok := nd.rec.firstAfter(id, t, t0); ok {
				at, typ = a, t
				return true
			}
		}
		return false
	})
	return at, typ
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func median(ds []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
