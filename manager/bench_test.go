package manager_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// failoverKills is how many leader kills one benchmark iteration measures.
const failoverKills = 10

// BenchmarkLeaderFailover kills the leader of three managers on loopback
// and times how long until a CreateService sent to a survivor succeeds
// (the survivor retries internally while the election runs). It reports
// the median and the worst of failoverKills kills per iteration.
func BenchmarkLeaderFailover(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			c := managertest.StartCluster(b, 3, benchOptions(tr.plaintext))
			var took []time.Duration
			n := 0
			for b.Loop() {
				for range failoverKills {
					n++
					took = append(took, failover(b, c, n))
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "worst-ms")
		})
	}
}

// transports are the two ways the benchmarks run, side by side: mutual
// TLS on every link (as shoal always runs) and plaintext, the baseline
// that tells what TLS costs.
var transports = []struct {
	name      string
	plaintext bool
}{{"tls", false}, {"plaintext", true}}

// benchOptions runs the benchmarks with the Raft timings shoal-manager
// uses by default (the zero values), not the test harness's.
func benchOptions(plaintext bool) managertest.Options {
	return managertest.Options{DefaultRaft: true, Plaintext: plaintext}
}

func failover(b *testing.B, c *managertest.Cluster, n int) time.Duration {
	b.StopTimer()
	old := c.WaitLeader(waitTimeout)
	survivor := (old + 1) % c.N()
	cl := c.Client(survivor)
	// Warm the connection so the figure is the failover, not a dial.
	if _, err := cl.ListServices(b.Context(), &shoalpb.ListServicesRequest{Stale: true}); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	start := time.Now()
	c.Kill(old)
	name := fmt.Sprintf("failover-%d", n)
	var err error
	for range 5 {
		_, err = cl.CreateService(b.Context(), &shoalpb.CreateServiceRequest{Spec: spec(name)})
		if err == nil {
			break
		}
	}
	took := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatalf("kill %d: create after failover: %v", n, err)
	}
	c.Restart(old)
	c.WaitFor(waitTimeout, func() error {
		resp, err := c.Client(old).GetService(b.Context(), &shoalpb.GetServiceRequest{Service: name, Stale: true})
		if err != nil {
			return err
		}
		if resp.GetSpec().GetName() != name {
			return errors.New("restarted manager has not caught up")
		}
		return nil
	})
	b.StartTimer()
	return took
}

// writeClients is how many clients BenchmarkControlWrites runs at once.
const writeClients = 16

// BenchmarkControlWrites runs writeClients concurrent clients, each with
// its own connection to the leader, doing CreateService with fsync on
// (the Raft log's default), and reports committed writes per second.
func BenchmarkControlWrites(b *testing.B) {
	// Without replicas the figure is the control path and Raft alone; with
	// replicas every new service also sets the orchestrator to work on the
	// same leader (its tasks stay pending: there are no nodes), whose
	// passes grow with the number of services.
	type benchCase struct {
		name      string
		via       string
		replicas  uint64
		plaintext bool
	}
	var cases []benchCase
	for _, bc := range []benchCase{
		{name: "leader", via: "leader"},
		{name: "follower", via: "follower"},
		{name: "leader-with-tasks", via: "leader", replicas: 2},
	} {
		for _, tr := range transports {
			bc.plaintext = tr.plaintext
			cases = append(cases, benchCase{bc.name + "/" + tr.name, bc.via, bc.replicas, tr.plaintext})
		}
	}
	for _, bc := range cases {
		via := bc.via
		b.Run(bc.name, func(b *testing.B) {
			c := managertest.StartCluster(b, 3, benchOptions(bc.plaintext))
			target := c.WaitLeader(waitTimeout)
			if via == "follower" {
				target = (target + 1) % c.N()
			}
			clients := make([]shoalpb.ControlClient, writeClients)
			for i := range clients {
				clients[i] = c.NewClient(target)
			}
			var next atomic.Int64
			var failed atomic.Pointer[error]
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for _, cl := range clients {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						sp := spec(fmt.Sprintf("w-%d", i))
						sp.Replicas = bc.replicas
						if _, err := cl.CreateService(b.Context(), &shoalpb.CreateServiceRequest{Spec: sp}); err != nil {
							failed.CompareAndSwap(nil, &err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if err := failed.Load(); err != nil {
				b.Fatalf("write failed: %v", *err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
		})
	}
}
