package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// sessionsOpened is, for each node, the manager and the time of the last
// session its agent established, and when it last connected ahead to the
// other managers (from the agents' own log).
type sessionsOpened struct {
	mu     sync.Mutex
	last   map[string]opened
	warmed map[string]time.Time
	// noAhead: the agents do not connect ahead (too many for this
	// process's open-file limit).
	noAhead bool
}

type opened struct {
	manager string
	at      time.Time
}

func newSessionsOpened() *sessionsOpened {
	return &sessionsOpened{last: map[string]opened{}, warmed: map[string]time.Time{}}
}

func (s *sessionsOpened) noteWarm(node string, at time.Time) {
	s.mu.Lock()
	s.warmed[node] = at
	s.mu.Unlock()
}

// connectedAhead checks that want agents connected to the other managers
// after their last session was established: the steady state a leader
// change meets in a cluster that has run for more than a few seconds.
func (s *sessionsOpened) connectedAhead(want int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.noAhead {
		return nil
	}
	n := 0
	for node, o := range s.last {
		if w, ok := s.warmed[node]; ok && !w.Before(o.at) {
			n++
		}
	}
	if n != want {
		return fmt.Errorf("%d of %d agents connected ahead to the other managers", n, want)
	}
	return nil
}

func (s *sessionsOpened) note(node, manager string, at time.Time) {
	s.mu.Lock()
	s.last[node] = opened{manager, at}
	s.mu.Unlock()
}

// with checks that want agents' last session is with manager and was
// established after since; it returns when the last of them was.
func (s *sessionsOpened) with(manager string, since time.Time, want int) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	var latest time.Time
	for _, o := range s.last {
		if o.manager == manager && !o.at.Before(since) {
			n++
			if o.at.After(latest) {
				latest = o.at
			}
		}
	}
	if n != want {
		return latest, fmt.Errorf("%d of %d agents have a session with %s since %s", n, want, manager, since.Format(time.StampMilli))
	}
	return latest, nil
}

// procCPU is the user and system time a process used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command (which may hold spaces) in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("pid %d: utime %q, stime %q", pid, f[11], f[12])
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
}

// BenchmarkManyAgentsReconnect: three shoal-manager processes (real Raft
// with fsync on loopback, mutual TLS) and 1,000 agents in this process
// (fake runtimes, real sessions, no gossip), with 10,000 replicas running.
// One op kills the leader with SIGKILL and measures until every agent has
// established a session with the new leader (a TLS handshake, a hello and
// a full assignment set each), from the agents' own log; the new leader's
// CPU over that time is reported too. The killed manager is started again
// off the clock. Run it with `make bench-scale`, or:
//
//	go test -run '^$' -bench BenchmarkManyAgentsReconnect -benchtime 3x ./cmd/agent/
func BenchmarkManyAgentsReconnect(b *testing.B) {
	const agents, replicas = 1000, 10000
	dir := b.TempDir()
	managerBin, _ := buildBinaries(b, dir)
	// With SHOAL_BENCH_PROFILE_DIR set, the surviving managers' CPU
	// profiles of the storm are saved, beside the agents' log.
	profDir := os.Getenv("SHOAL_BENCH_PROFILE_DIR")
	var debugAddrs []string
	if profDir != "" {
		for range 3 {
			debugAddrs = append(debugAddrs, freeAddr(b))
		}
	}
	procs, addrs := startManagersWith(b, dir, managerBin, nil, func(i int) []string {
		args := []string{"--log-level", cmp.Or(os.Getenv("SHOAL_BENCH_MANAGER_LOG"), "warn")}
		if profDir != "" {
			args = append(args, "--debug-addr", debugAddrs[i])
		}
		return args
	})
	if profDir != "" {
		b.Cleanup(func() {
			for _, p := range procs {
				if data, err := os.ReadFile(p.log); err == nil {
					_ = os.WriteFile(filepath.Join(profDir, filepath.Base(p.log)), data, 0o644)
				}
			}
		})
	}
	var ends atomic.Int64
	opened := newSessionsOpened()
	rts := startAgents(b, dir, agents, addrs, &ends, opened)
	cs := []shoalpb.ControlClient{control(b, addrs[0]), control(b, addrs[1]), control(b, addrs[2])}
	c := cs[0]
	waitNodesReady(b, c, agents)
	if _, err := c.CreateService(b.Context(), &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
		Name: "web", Image: "img", Mode: "replicated", Replicas: replicas,
	}}); err != nil {
		b.Fatal(err)
	}
	managertest.WaitFor(b, 300*time.Second, func() error { return containersRunning(rts, replicas) })
	var took, cpu []float64
	b.ResetTimer()
	for op := range b.N {
		b.StopTimer()
		old := leaderIndex(b, procs, addrs, cs)
		managertest.WaitFor(b, 120*time.Second, func() error {
			if _, err := opened.with(addrs[old], time.Time{}, agents); err != nil {
				return err
			}
			return opened.connectedAhead(agents)
		})
		before, _ := cs[old].ClusterStatus(b.Context(), &shoalpb.ClusterStatusRequest{})
		b.StartTimer()
		killed := time.Now()
		procs[old].kill9(b)
		var profiled sync.WaitGroup
		if profDir != "" {
			profiled.Go(func() {
				profileSelfFor(b, filepath.Join(profDir, fmt.Sprintf("storm-%d-agents.pprof", op)), 6*time.Second)
			})
			for i, a := range debugAddrs {
				if i != old {
					profiled.Go(func() {
						fetchDebug(b, a, "profile?seconds=6", filepath.Join(profDir, fmt.Sprintf("storm-%d-%s.pprof", op, procs[i].name)))
					})
				}
			}
		}
		var next int
		managertest.WaitFor(b, 120*time.Second, func() error {
			next = leaderIndex(b, procs, addrs, cs)
			if next == old || next < 0 {
				return fmt.Errorf("no new leader yet")
			}
			_, err := opened.with(addrs[next], killed, agents)
			return err
		})
		b.StopTimer()
		last, _ := opened.with(addrs[next], killed, agents)
		took = append(took, last.Sub(killed).Seconds())
		after, _ := cs[next].ClusterStatus(b.Context(), &shoalpb.ClusterStatusRequest{})
		b.Logf("leader %s killed: all %d sessions back on %s after %s, %d sessions ended so far, %d Raft entries meanwhile",
			procs[old].name, agents, procs[next].name, last.Sub(killed).Round(time.Millisecond), ends.Load(),
			int64(after.GetCommitIndex())-int64(before.GetCommitIndex()))
		if spent, err := procCPU(procs[next].cmd.Process.Pid); err == nil {
			// The new leader's CPU over its whole life, so far: the storm
			// is most of it, since it was idle before.
			cpu = append(cpu, spent.Seconds())
		}
		profiled.Wait()
		procs[old] = procs[old].restart(b)
		managertest.WaitFor(b, 300*time.Second, func() error { return containersRunning(rts, replicas) })
		b.StartTimer()
	}
	b.StopTimer()
	med, worst := medianWorst(took)
	b.ReportMetric(med, "all_back_median_s")
	b.ReportMetric(worst, "all_back_worst_s")
	if len(cpu) > 0 {
		b.ReportMetric(cpu[len(cpu)-1], "new_leader_cpu_total_s")
	}
	b.ReportMetric(float64(ends.Load())/float64(b.N), "sessions_ended/op")
}

// leaderIndex is which of the managers leads now, by asking each running
// one through its socket; -1 while none does.
func leaderIndex(b *testing.B, procs []*proc, addrs []string, cs []shoalpb.ControlClient) int {
	for i, p := range procs {
		select {
		case <-p.done:
			continue
		default:
		}
		ctx, cancel := context.WithTimeout(b.Context(), 2*time.Second)
		st, err := cs[i].ClusterStatus(ctx, &shoalpb.ClusterStatusRequest{})
		cancel()
		if err != nil {
			continue
		}
		for j, a := range addrs {
			if a == st.GetLeaderAddr() {
				return j
			}
		}
	}
	return -1
}

// profileSelfFor writes a CPU profile of this process (the agents) for d.
func profileSelfFor(b *testing.B, out string, d time.Duration) {
	f, err := os.Create(out)
	if err != nil {
		b.Error(err)
		return
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Error(err)
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.Context().Done():
	}
	pprof.StopCPUProfile()
}
