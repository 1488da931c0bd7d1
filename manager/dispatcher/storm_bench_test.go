package dispatcher_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/manager/managertest"
)

// stormAgents is how many agents BenchmarkReconnectStorm runs.
const stormAgents = 1000

// BenchmarkReconnectStorm: three managers and 1,000 agents (fake
// runtimes, no gossip) in this process. One op kills the leader and
// measures until every agent holds a session with the new leader again:
// 1,000 TLS handshakes and hellos at once. It also reports the CPU this
// process used from the kill until then (the new leader, the other
// survivor and all agents share it: an upper bound of the leader's).
func BenchmarkReconnectStorm(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) { benchReconnectStorm(b, tr.opts) })
	}
}

func benchReconnectStorm(b *testing.B, opts managertest.Options) {
	opts.NoGossip = true
	rc := startRaftClusterWith(b, opts, 0)
	c := rc.c
	join := []string{c.Addr(0), c.Addr(1), c.Addr(2)}
	for i := range stormAgents {
		ta := newTestAgent(b, fmt.Sprintf("agent-%04d", i), join)
		ta.creds = c.AgentCredentials(ta.dir)
		ta.start()
		rc.agents = append(rc.agents, ta)
	}
	var took, cpu []float64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		old := c.WaitLeader(30 * time.Second)
		managertest.WaitFor(b, 120*time.Second, func() error { return sessionsAt(c, old, stormAgents) })
		b.StartTimer()
		start, cpu0 := time.Now(), processCPU(b)
		c.Kill(old)
		managertest.WaitFor(b, 120*time.Second, func() error {
			l := c.Leader()
			if l < 0 || l == old {
				return fmt.Errorf("no new leader yet")
			}
			return sessionsAt(c, l, stormAgents)
		})
		took = append(took, time.Since(start).Seconds())
		cpu = append(cpu, (processCPU(b) - cpu0).Seconds())
		b.StopTimer()
		c.Restart(old)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(maxOf(took), "all_back_s")
	b.ReportMetric(maxOf(cpu), "process_cpu_s")
	b.ReportMetric(maxOf(cpu)/maxOf(took), "process_cores")
}

func sessionsAt(c *managertest.Cluster, i, want int) error {
	m := c.Manager(i)
	if m == nil {
		return fmt.Errorf("manager %d is not running", i)
	}
	if n := m.SessionCount(); n != want {
		return fmt.Errorf("manager %d holds %d of %d sessions", i, n, want)
	}
	return nil
}

// processCPU is the user and system CPU time this process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
