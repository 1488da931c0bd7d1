package raftstore

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/internal/seal"
)

// BenchmarkApplyAtRest: BenchmarkApply's load (three members on loopback,
// fsync on, 16 writers) without and with a data key, side by side, so the
// cost of sealing every entry is read against a baseline of the same run.
func BenchmarkApplyAtRest(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		b.Run(fmt.Sprintf("sealed=%v", sealed), func(b *testing.B) {
			c := newCluster(b, 3, func(cfg *Config) {
				if sealed {
					cfg.DataKey = seal.NewKey()
				}
			})
			leader := c.nodes[c.waitLeader()]
			var seq atomic.Int64
			b.SetParallelism(max(1, 16/runtimeProcs()))
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := seq.Add(1)
					svc := testService(fmt.Sprintf("id-%d", i), fmt.Sprintf("svc-%d", i), 3)
					svc.Spec.Env = []string{"A=" + marker, "B=" + marker}
					if _, err := leader.Apply(b.Context(), CreateService{Service: svc}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
		})
	}
}
