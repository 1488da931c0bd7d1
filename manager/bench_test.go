package manager_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/manager"
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

// BenchmarkControlWrites runs concurrent clients, each with its own
// connection, doing CreateService with fsync on (the Raft log's default),
// and reports committed writes per second. Each case runs twice in the
// same run: with the leader's proposal batching (batched) and with one
// Raft entry per write (unbatched, the path before batching), 16 and 64
// clients, with TLS on; through a follower at 16 and 64 clients too.
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
		clients   int
		batch     int // raftstore MaxProposalBatch; 0: the default
	}
	var cases []benchCase
	for _, bc := range []benchCase{
		{name: "leader", via: "leader"},
		{name: "leader-with-tasks", via: "leader", replicas: 2},
	} {
		for _, clients := range []int{16, 64} {
			for _, path := range []struct {
				name  string
				batch int
			}{{"batched", 0}, {"unbatched", 1}} {
				cases = append(cases, benchCase{fmt.Sprintf("%s/tls/clients=%d/%s", bc.name, clients, path.name),
					bc.via, bc.replicas, false, clients, path.batch})
			}
		}
	}
	cases = append(cases,
		benchCase{name: "leader/plaintext/clients=16/batched", via: "leader", plaintext: true, clients: 16},
		benchCase{name: "follower/tls/clients=16/batched", via: "follower", clients: 16},
		benchCase{name: "follower/tls/clients=64/batched", via: "follower", clients: 64})
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			opts := benchOptions(bc.plaintext)
			opts.Edit = func(cfg *manager.Config) { cfg.Raft.MaxProposalBatch = bc.batch }
			c := managertest.StartCluster(b, 3, opts)
			target := c.WaitLeader(waitTimeout)
			if bc.via == "follower" {
				target = (target + 1) % c.N()
			}
			clients := make([]shoalpb.ControlClient, bc.clients)
			for i := range clients {
				clients[i] = c.NewClient(target)
				// Connect (and shake hands) before the clock starts: the
				// figure is writes, not 64 TLS handshakes at once.
				c.WaitFor(waitTimeout, func() error {
					_, err := clients[i].ListServices(b.Context(), &shoalpb.ListServicesRequest{Stale: true})
					return err
				})
			}
			b.ResetTimer()
			cpu := processCPU(b)
			elapsed, err := writeAll(b, clients, bc.replicas)
			cpu = processCPU(b) - cpu
			b.StopTimer()
			if err != nil {
				b.Fatalf("write failed: %v", err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
			// The CPU all three managers and the clients spent per write:
			// on a shared host it varies far less than writes/s does.
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/write")
		})
	}
}

// writeAll sends b.N CreateService calls spread over clients, each client
// one call at a time, and returns how long they took.
func writeAll(b *testing.B, clients []shoalpb.ControlClient, replicas uint64) (time.Duration, error) {
	var next atomic.Int64
	var failed atomic.Pointer[error]
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
				sp.Replicas = replicas
				if _, err := cl.CreateService(b.Context(), &shoalpb.CreateServiceRequest{Spec: sp}); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := failed.Load(); err != nil {
		return elapsed, *err
	}
	return elapsed, nil
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
