package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/join"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// BenchmarkManyAgents: three shoal-manager processes (real Raft on
// loopback) and 1,000 agents in this process (fake runtimes, real
// sessions, no gossip). One op creates a service of 10,000 replicas and
// waits until all run; the service is removed and its containers gone
// before the next op, off the clock. It reports the median and the worst
// op (run it with -benchtime 5x: `make bench-scale`), how many sessions
// the agents lost and how many tasks were orphaned on the way (both 0 in
// a healthy run), and the leader's live heap (from its GC trace) and
// resident size after the last op.
func BenchmarkManyAgents(b *testing.B) { benchManyAgents(b, 1000, 10000) }

// BenchmarkManyAgents100k is BenchmarkManyAgents at 5,000 agents and
// 100,000 replicas (the cluster's replica limit raised to its ceiling).
// It needs about 8 GiB and several minutes: `make bench-scale-100k`.
func BenchmarkManyAgents100k(b *testing.B) { benchManyAgents(b, 5000, 100000) }

// idleSettle is how long the cluster is left alone after a create before
// the idle leader's CPU is measured.
const idleSettle = 10 * time.Second

func benchManyAgents(b *testing.B, agents, replicas int) {
	ahead := raiseFileLimit(b, agents)
	dir := b.TempDir()
	managerBin, _ := buildBinaries(b, dir)
	// GC tracing gives the leader's live heap; the default Raft timings
	// (the shortened test ones let a loaded machine call elections in the
	// middle of the benchmark).
	profDir := os.Getenv("SHOAL_BENCH_PROFILE_DIR")
	args := []string{"--log-level", "warn"}
	if agents > 1000 {
		// Three managers and thousands of simulated agents share two
		// cores here: at the default 500 ms a follower starved that long
		// calls an election in the middle of the create, and every
		// session moves. Busy hosts of a cluster this size would set
		// longer timeouts too.
		args = append(args, "--raft-heartbeat-timeout", "2s", "--raft-election-timeout", "2s")
	}
	var debugAddrs []string
	if profDir != "" {
		for range 3 {
			debugAddrs = append(debugAddrs, freeAddr(b))
		}
	}
	procs, addrs := startManagersWith(b, dir, managerBin, []string{"GODEBUG=gctrace=1"}, func(i int) []string {
		if profDir == "" {
			return args
		}
		return append(args, "--debug-addr", debugAddrs[i])
	})
	startedAgents := time.Now()
	var ends atomic.Int64
	opened := newSessionsOpened()
	opened.noAhead = !ahead
	rts := startAgents(b, dir, agents, addrs, &ends, opened)
	c := control(b, addrs[0])
	waitNodesReady(b, c, agents)
	b.Logf("%d agents ready %s after they started", agents, time.Since(startedAgents).Round(time.Millisecond))
	// As in a cluster that has run for more than a few seconds, every
	// agent is connected to every manager before the create.
	managertest.WaitFor(b, 300*time.Second, func() error { return opened.connectedAhead(agents) })
	if replicas > 10000 {
		limit := uint64(replicas)
		if _, err := c.UpdateCluster(b.Context(), &shoalpb.UpdateClusterRequest{MaxReplicas: &limit}); err != nil {
			b.Fatal(err)
		}
	}
	stopCPU := profileSelf(b, profDir)
	var took []float64
	var lost, orphaned int64
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("web%d", i)
		ends0 := ends.Load()
		cpu0 := takeCPU(b, procs)
		t0 := time.Now()
		var profiled sync.WaitGroup
		if profDir != "" {
			profiled.Go(func() {
				// An execution trace of the first seconds on both sides
				// (where goroutines wait, not only where CPU goes).
				// Not above 1,000 agents: tracing thousands of agents'
				// goroutines takes minutes and slows them more than the
				// work it traces.
				if agents <= 1000 {
					var traced sync.WaitGroup
					traced.Go(func() { traceSelf(b, filepath.Join(profDir, fmt.Sprintf("agents-%d.trace", i)), 4*time.Second) })
					profileLeader(b, c, addrs, debugAddrs, "trace?seconds=4", filepath.Join(profDir, fmt.Sprintf("leader-%d.trace", i)))
					traced.Wait()
				}
				profileLeader(b, c, addrs, debugAddrs, "profile?seconds=10", filepath.Join(profDir, fmt.Sprintf("leader-cpu-%d.pprof", i)))
				profileLeader(b, c, addrs, debugAddrs, "heap", filepath.Join(profDir, fmt.Sprintf("leader-heap-at-10s-%d.pprof", i)))
				// The agents' side of the same 10 s, also when the op fails.
				stopCPU()
				dumpGoroutines(b, filepath.Join(profDir, fmt.Sprintf("agents-goroutines-%d.txt", i)))
				b.Logf("after 10 s: %s", taskStates(b, c, name))
				profileLeader(b, c, addrs, debugAddrs, "goroutine?debug=1", filepath.Join(profDir, fmt.Sprintf("leader-goroutines-%d.txt", i)))
				for _, a := range debugAddrs {
					fetchDebug(b, a, "goroutine?debug=1", filepath.Join(profDir, fmt.Sprintf("goroutines-%s-%d.txt", strings.ReplaceAll(a, ":", "_"), i)))
				}
			})
		}
		_, err := c.CreateService(b.Context(), &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
			Name: name, Image: "img", Mode: "replicated", Replicas: uint64(replicas),
			StopGracePeriod: durationpb.New(time.Second),
		}})
		if err != nil {
			b.Fatal(err)
		}
		managertest.WaitFor(b, 300*time.Second, func() error {
			if err := containersRunning(rts, replicas); err != nil {
				return err
			}
			return countRunningVia(b, c, name, replicas)
		})
		took = append(took, time.Since(t0).Seconds())
		cpu := takeCPU(b, procs).since(cpu0)
		b.StopTimer()
		lost += ends.Load() - ends0
		profiled.Wait()
		stopCPU()
		orphaned += int64(countState(b, c, name, "orphaned"))
		if profDir != "" {
			// What the leader holds at this size.
			profileLeader(b, c, addrs, debugAddrs, "heap?gc=1", filepath.Join(profDir, fmt.Sprintf("leader-heap-%d.pprof", i)))
		}
		reportTimeline(b, c, name, t0)
		leader := leaderProc(b, c, procs, addrs)
		if mb, err := liveHeapMiB(leader.log); err == nil {
			b.ReportMetric(mb, "leader_live_heap_MiB")
		}
		if mb, err := rssMiB(leader.cmd.Process.Pid); err == nil {
			b.ReportMetric(mb, "leader_rss_MiB")
		}
		// The work apart from the wall time, which varies by more than
		// the work between runs on a shared host: the agents' side (this
		// process, with the benchmark's own listing) and the managers'.
		b.ReportMetric(cpu.self.Seconds(), "agents_cpu_s")
		for j, p := range procs {
			if p == leader {
				b.ReportMetric(cpu.procs[j].Seconds(), "leader_cpu_s")
			}
		}
		b.ReportMetric(cpu.managers().Seconds(), "managers_cpu_s")
		// The leader's CPU while the cluster idles at this size (and,
		// when profiling, where it goes): after a settling time, so that
		// the figure is the steady state (heartbeats, periodic
		// reconciles), not the tail of the create and of the listing
		// above.
		settle := time.NewTimer(idleSettle)
		select {
		case <-settle.C:
		case <-b.Context().Done():
		}
		var idleProfiled sync.WaitGroup
		if profDir != "" {
			idleProfiled.Go(func() {
				profileLeader(b, c, addrs, debugAddrs, "profile?seconds=10", filepath.Join(profDir, fmt.Sprintf("leader-idle-cpu-%d.pprof", i)))
			})
		}
		if share, err := cpuShare(b, leader.cmd.Process.Pid, 10*time.Second); err == nil {
			b.ReportMetric(100*share, "idle_leader_cpu_%")
		}
		idleProfiled.Wait()
		if _, err := c.RemoveService(b.Context(), &shoalpb.RemoveServiceRequest{Service: name}); err != nil {
			b.Fatal(err)
		}
		managertest.WaitFor(b, 120*time.Second, func() error { return containersRunning(rts, 0) })
		b.StartTimer()
	}
	b.StopTimer()
	med, worst := medianWorst(took)
	b.ReportMetric(med, "median_s")
	b.ReportMetric(worst, "worst_s")
	b.ReportMetric(worst/med, "worst/median")
	b.ReportMetric(float64(lost)/float64(b.N), "sessions_lost/op")
	b.ReportMetric(float64(orphaned)/float64(b.N), "orphaned/op")
}

// medianWorst returns the median and the largest of v.
func medianWorst(v []float64) (median, worst float64) {
	s := slices.Sorted(slices.Values(v))
	n := len(s)
	median = s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return median, s[n-1]
}

// sessionEnds counts the agents' "session ended" log records into n:
// every one is a session lost (none ends on purpose while the benchmark
// runs). It passes the records on to inner.
type sessionEnds struct {
	n *atomic.Int64
	// opened, when set, notes each session established, by node.
	opened *sessionsOpened
	node   string // the node_id attribute of the logger, once given
	inner  slog.Handler
}

func (h sessionEnds) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.inner.Enabled(ctx, l)
}

func (h sessionEnds) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "session ended" {
		h.n.Add(1)
	}
	if r.Message == "connected ahead to the other managers" && h.opened != nil {
		h.opened.noteWarm(h.node, r.Time)
	}
	if r.Message == "session established" && h.opened != nil {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "manager" {
				h.opened.note(h.node, a.Value.String(), r.Time)
				return false
			}
			return true
		})
	}
	if h.inner.Enabled(ctx, r.Level) {
		return h.inner.Handle(ctx, r)
	}
	return nil
}

func (h sessionEnds) WithAttrs(as []slog.Attr) slog.Handler {
	c := h
	for _, a := range as {
		if a.Key == "node_id" {
			c.node = a.Value.String()
		}
	}
	c.inner = h.inner.WithAttrs(as)
	return c
}

func (h sessionEnds) WithGroup(g string) slog.Handler {
	c := h
	c.inner = h.inner.WithGroup(g)
	return c
}

// listTasks lists a service's tasks page by page (100,000 tasks do not
// fit one message).
func listTasks(b *testing.B, c shoalpb.ControlClient, svc string) ([]*shoalpb.Task, error) {
	var out []*shoalpb.Task
	for token := ""; ; {
		resp, err := c.ListTasks(b.Context(), &shoalpb.ListTasksRequest{Service: svc, PageSize: 10000, PageToken: token})
		if err != nil {
			return nil, err
		}
		out = append(out, resp.GetTasks()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// countState counts a service's tasks in one state.
func countState(b *testing.B, c shoalpb.ControlClient, svc, state string) int {
	tasks, err := listTasks(b, c, svc)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, tk := range tasks {
		if tk.GetStatus().GetState() == state {
			n++
		}
	}
	return n
}

func waitNodesReady(b *testing.B, c shoalpb.ControlClient, want int) {
	managertest.WaitFor(b, 120*time.Second, func() error {
		resp, err := c.ListNodes(b.Context(), &shoalpb.ListNodesRequest{})
		if err != nil {
			return err
		}
		ready := 0
		for _, n := range resp.GetNodes() {
			if n.GetNode().GetStatus() == "ready" {
				ready++
			}
		}
		if ready != want {
			return fmt.Errorf("%d of %d nodes ready", ready, want)
		}
		return nil
	})
}

// containersRunning checks that the fake runtimes run want containers.
func containersRunning(rts []*fake.Runtime, want int) error {
	n := 0
	for _, rt := range rts {
		n += len(rt.Running())
	}
	if n != want {
		return fmt.Errorf("%d containers run, want %d", n, want)
	}
	return nil
}

// reportTimeline reports, from the tasks' own times, when the first and
// the last replica ran (as their agents saw it) and when the last report
// was committed, counted from the create request.
func reportTimeline(b *testing.B, c shoalpb.ControlClient, svc string, t0 time.Time) {
	tasks, err := listTasks(b, c, svc)
	if err != nil {
		b.Fatal(err)
	}
	var ran, committed []float64
	for _, tk := range tasks {
		ran = append(ran, tk.GetStatus().GetTimestamp().AsTime().Sub(t0).Seconds())
		committed = append(committed, tk.GetUpdatedAt().AsTime().Sub(t0).Seconds())
	}
	sort.Float64s(ran)
	sort.Float64s(committed)
	b.ReportMetric(ran[0], "first_running_s")
	// The middle and the tail apart: replacements of the tasks of a lost
	// session make a tail that the median does not have.
	b.ReportMetric(ran[len(ran)/2], "half_running_s")
	b.ReportMetric(ran[len(ran)*9/10], "p90_running_s")
	b.ReportMetric(ran[len(ran)-1], "last_running_s")
	b.ReportMetric(committed[len(committed)-1], "last_committed_s")
}

func countRunningVia(b *testing.B, c shoalpb.ControlClient, svc string, want int) error {
	tasks, err := listTasks(b, c, svc)
	if err != nil {
		return err
	}
	n := 0
	for _, tk := range tasks {
		if tk.GetStatus().GetState() == "running" {
			n++
		}
	}
	if n != want {
		return fmt.Errorf("%d of %d tasks running in the state", n, want)
	}
	return nil
}

func leaderProc(b *testing.B, c shoalpb.ControlClient, procs []*proc, addrs []string) *proc {
	st, err := c.ClusterStatus(b.Context(), &shoalpb.ClusterStatusRequest{})
	if err != nil {
		b.Fatal(err)
	}
	for i, a := range addrs {
		if a == st.GetLeaderAddr() {
			return procs[i]
		}
	}
	b.Fatalf("leader %q is none of %v", st.GetLeaderAddr(), addrs)
	return nil
}

// startAgents runs n agents in this process, each with its own fake
// runtime and data dir, until the benchmark ends.
func startAgents(b *testing.B, dir string, n int, joinAddrs []string, ends *atomic.Int64, opened *sessionsOpened) []*fake.Runtime {
	ctx, cancel := context.WithCancel(b.Context())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	rts := make([]*fake.Runtime, n)
	token := joinTokens(b, joinAddrs[0]).GetWorker()
	// The agents' own log (session ends and starts) when profiling.
	logger := slog.New(slog.DiscardHandler)
	if d := os.Getenv("SHOAL_BENCH_PROFILE_DIR"); d != "" {
		f, err := os.Create(filepath.Join(d, "agents.log"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	logger = slog.New(sessionEnds{n: ends, opened: opened, inner: logger.Handler()})
	for i := range n {
		rts[i] = fake.New()
		dataDir := filepath.Join(dir, "agents", strconv.Itoa(i))
		// Each agent joins with the worker token, as shoal-agent does.
		creds, err := join.Obtain(b.Context(), join.Options{Dir: dataDir, Managers: joinAddrs, Token: token, Role: pki.RoleWorker, Logger: logger,
			// Thousands of hosts joining in the same second queue for their
			// handshakes and signatures: more than the 1 min default.
			Timeout: 5 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		a, err := agent.New(agent.Config{
			DataDir: dataDir, Join: joinAddrs, AdvertiseAddr: "127.0.0.1:0",
			Hostname: fmt.Sprintf("agent-%04d", i), Runtime: rts[i],
			Resources: api.Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30}, Credentials: creds, Logger: logger,
			NoConnectAhead: opened != nil && opened.noAhead,
		})
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			if err := a.Run(ctx); err != nil {
				b.Errorf("agent %d: %v", i, err)
			}
		})
	}
	return rts
}

// taskStates counts a service's tasks by state.
func taskStates(b *testing.B, c shoalpb.ControlClient, svc string) string {
	tasks, err := listTasks(b, c, svc)
	if err != nil {
		return err.Error()
	}
	n := map[string]int{}
	for _, tk := range tasks {
		n[tk.GetStatus().GetState()]++
	}
	return fmt.Sprint(n)
}

// profileLeader saves a profile of the leader (SHOAL_BENCH_PROFILE_DIR
// set), e.g. where its time goes while the replicas are placed and started.
func profileLeader(b *testing.B, c shoalpb.ControlClient, addrs, debugAddrs []string, what, out string) {
	st, err := c.ClusterStatus(b.Context(), &shoalpb.ClusterStatusRequest{})
	if err != nil {
		b.Error(err)
		return
	}
	for i, a := range addrs {
		if a != st.GetLeaderAddr() {
			continue
		}
		fetchDebug(b, debugAddrs[i], what, out)
		return
	}
}

func fetchDebug(b *testing.B, addr, what, out string) {
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/"+what, nil)
	if err != nil {
		b.Error(err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil {
		err = os.WriteFile(out, data, 0o644)
	}
	if err != nil {
		b.Error(err)
	}
	b.Logf("profile: %s", out)
}

// raiseFileLimit lets this process, and the managers it starts, hold the
// sockets of agents simulated hosts: each agent's session, its
// connections ahead to the other managers and its own listener, about
// five descriptors, where one host would hold them on its own. It reports
// whether there is room for the connections ahead; without it, the agents
// do without (a real host holds its own three).
func raiseFileLimit(b *testing.B, agents int) bool {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("read the open-file limit: %v", err)
	}
	want := uint64(5*agents + 4096)
	if lim.Cur < want {
		raised := lim
		raised.Cur, raised.Max = want, max(lim.Max, want)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			return true
		}
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if lim.Cur < want {
		b.Logf("%d agents would need %d open files to connect ahead to every manager; the limit is %d, so they do not", agents, want, lim.Cur)
		return false
	}
	return true
}
