package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// The shape of a shoalctl wait: its watch selectors and, for the old
// polling beside it, its interval and task page size (ctl/wait.go,
// ctl/watch.go).
const (
	waitPollInterval = 200 * time.Millisecond
	waitTaskPage     = 5000
	cpuWindow        = 10 * time.Second
)

// BenchmarkWatch: three shoal-manager processes, 50 agents in this
// process (fake runtimes) and a service of 10,000 running replicas.
//
// wait_cpu is the leader's CPU (user+system from /proc/PID/stat) over a
// fixed window of cpuWindow while 10 clients wait on a cluster where
// nothing changes but what a live cluster does by itself (agents'
// heartbeats and sessions, Raft's own traffic), in three windows of the
// same run: no client (idle, measured before and after the others and
// averaged), 10 clients by Watch, and 10 clients polling as shoalctl did
// before (ListServices, paged ListTasks, ListNodes every 200 ms, each
// behind the leader's barrier). Each window opens only once its clients
// are past their start: the watchers have read their whole snapshot (the
// 10,000 tasks once each) and the pollers have done one full round, so
// the windows hold the steady cost of waiting, not the first copy.
// watch/poll_net is (watch - idle) / (poll - idle), each floored at 1 ms:
// the watchers' cost is far below the windows' noise (the agents, Raft,
// the rest of the machine), so it mostly says that. watch/poll_rpc is
// measurable: a CPU profile of the leader over each window gives the CPU
// under the Watch handler in the watch window and under every unary call
// (less the idle windows') in the poll window, each floored at one sample.
//
// fanout scales the service by 1,000 replicas under 100 watchers, which
// have all read their snapshot first, and reports how long after its
// commit each watcher saw the last change: the median, p99 and worst over
// the watchers. A watcher told to resync
// watches again from its index, as shoalctl does; resyncs counts them.
// The 100 watchers share one connection and this process with the 50
// agents, so the figure includes decoding every change 100 times on the
// same two cores as the managers.
// `make bench-watch` runs it.
func BenchmarkWatch(b *testing.B) {
	const agents, replicas = 50, 10000
	dir := b.TempDir()
	managerBin, _ := buildBinaries(b, dir)
	debugAddrs := []string{freeAddr(b), freeAddr(b), freeAddr(b)}
	procs, addrs := startManagersWith(b, dir, managerBin, nil, func(i int) []string {
		return []string{"--log-level", "warn", "--debug-addr", debugAddrs[i]}
	})
	var ends atomic.Int64
	startAgents(b, dir, agents, addrs, &ends, nil)
	c0 := control(b, addrs[0])
	waitNodesReady(b, c0, agents)
	leader := leaderProc(b, c0, procs, addrs)
	c := control(b, addrs[slices.Index(procs, leader)])
	leaderDebug := debugAddrs[slices.Index(procs, leader)]
	if _, err := c.CreateService(b.Context(), &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
		Name: "web", Image: "img", Mode: "replicated", Replicas: replicas,
	}}); err != nil {
		b.Fatal(err)
	}
	managertest.WaitFor(b, 300*time.Second, func() error { return countRunningVia(b, c, "web", replicas) })
	// fanout scales past the default limit of replicas per service.
	if _, err := c.UpdateCluster(b.Context(), &shoalpb.UpdateClusterRequest{MaxReplicas: proto.Uint64(2 * replicas)}); err != nil {
		b.Fatal(err)
	}
	svc, err := c.GetService(b.Context(), &shoalpb.GetServiceRequest{Service: "web"})
	if err != nil {
		b.Fatal(err)
	}
	sel := []*shoalpb.WatchSelector{{Kind: "node"},
		{Kind: "service", Service: svc.GetId()}, {Kind: "task", Service: svc.GetId()}}
	b.Run("wait_cpu", func(b *testing.B) {
		var idle, watch, poll cpuUse
		for range b.N {
			before := cpuWaiting(b, leader, leaderDebug, 0, nil)
			watch = watch.add(cpuWaiting(b, leader, leaderDebug, 10, func(ctx context.Context, started func()) {
				watchClient(ctx, c, sel, func(m *shoalpb.WatchMessage, _ time.Time) {
					if m.GetSnapshotDone() {
						started()
					}
				})
			}))
			poll = poll.add(cpuWaiting(b, leader, leaderDebug, 10, func(ctx context.Context, started func()) { pollClient(ctx, c, started) }))
			idle = idle.add(before).add(cpuWaiting(b, leader, leaderDebug, 0, nil))
		}
		n := float64(b.N)
		ms := func(d time.Duration, per float64) float64 { return float64(d.Milliseconds()) / per }
		b.ReportMetric(ms(idle.process, 2*n), "idle_cpu_ms")
		b.ReportMetric(ms(watch.process, n), "watch_cpu_ms")
		b.ReportMetric(ms(poll.process, n), "poll_cpu_ms")
		b.ReportMetric(float64(pollErrors.Load()), "poll_errors")
		b.ReportMetric(max(ms(watch.process, n)-ms(idle.process, 2*n), 1)/max(ms(poll.process, n)-ms(idle.process, 2*n), 1), "watch/poll_net")
		// The calls' own CPU, from the leader's profile: Watch's handler
		// in the watch windows, every unary call (less the idle windows')
		// in the poll windows.
		watchRPC := ms(watch.watchRPC, n)
		pollRPC := ms(poll.unaryRPC, n) - ms(idle.unaryRPC, 2*n)
		b.ReportMetric(watchRPC, "watch_rpc_ms")
		b.ReportMetric(pollRPC, "poll_rpc_ms")
		// Below one sample (10 ms) the watchers' figure is its resolution:
		// the ratio is then an upper bound.
		b.ReportMetric(max(watchRPC, 10)/max(pollRPC, 10), "watch/poll_rpc")
	})
	b.Run("fanout", func(b *testing.B) {
		resyncs.Store(0)
		var all []float64
		for range b.N {
			all = append(all, fanout(b, c, sel, replicas)...)
		}
		slices.Sort(all)
		b.ReportMetric(float64(resyncs.Load()), "resyncs")
		b.ReportMetric(all[len(all)/2], "median_ms")
		b.ReportMetric(all[len(all)-1], "max_ms")
		b.ReportMetric(all[len(all)*99/100], "p99_ms")
	})
}

// cpuUse is the leader's CPU over a window: the whole process's (user
// and system, from /proc), and, from a CPU profile over the same window,
// that under the Watch handler and under every unary call (interceptors,
// handler and the response's encoding; not the connection's writer, TLS
// or the garbage collector, which no call's stack holds).
type cpuUse struct {
	process, watchRPC, unaryRPC time.Duration
}

func (u cpuUse) add(o cpuUse) cpuUse {
	return cpuUse{u.process + o.process, u.watchRPC + o.watchRPC, u.unaryRPC + o.unaryRPC}
}

// cpuWaiting starts n clients, waits until each has called started (its
// first snapshot read, its first round of polls done), and returns the
// leader's CPU over the next cpuWindow.
func cpuWaiting(b *testing.B, leader *proc, debugAddr string, n int, client func(ctx context.Context, started func())) cpuUse {
	ctx, cancel := context.WithCancel(b.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var startedN atomic.Int64
	for range n {
		wg.Go(func() {
			var once sync.Once
			client(ctx, func() { once.Do(func() { startedN.Add(1) }) })
		})
	}
	managertest.WaitFor(b, 120*time.Second, func() error {
		if got := startedN.Load(); got < int64(n) {
			return fmt.Errorf("%d of %d clients past their start", got, n)
		}
		return nil
	})
	type result struct {
		p   *cpuProfile
		err error
	}
	profiled := make(chan result, 1)
	go func() {
		p, err := fetchCPUProfile(b.Context(), debugAddr, cpuWindow)
		profiled <- result{p, err}
	}()
	before := leaderCPU(b, leader)
	r := <-profiled
	after := leaderCPU(b, leader)
	if r.err != nil {
		b.Fatal(r.err)
	}
	return cpuUse{
		process:  after - before,
		watchRPC: r.p.under([]string{"_Control_Watch_Handler"}),
		// grpc-go wraps each unary handler (and its response's encoding)
		// in wrapUnaryHandler (older releases: processUnaryRPC).
		unaryRPC: r.p.under([]string{"wrapUnaryHandler", "processUnaryRPC"}),
	}
}

func leaderCPU(b *testing.B, leader *proc) time.Duration {
	d, err := procCPU(leader.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// watchClient follows a watch as shoalctl's wait does until ctx ends;
// seen, when set, gets each message and the time it arrived. Told to
// resync after it fell behind, it watches again from its index (as
// shoalctl does), from the current objects after any other resync.
func watchClient(ctx context.Context, c shoalpb.ControlClient, sel []*shoalpb.WatchSelector, seen func(*shoalpb.WatchMessage, time.Time)) {
	var index uint64
	for ctx.Err() == nil {
		stream, err := c.Watch(ctx, &shoalpb.WatchRequest{Selectors: sel, SinceIndex: index, SpecsOnce: true})
		if err != nil {
			return
		}
		for {
			msg, err := stream.Recv()
			if err != nil {
				return
			}
			if msg.GetResyncRequired() {
				resyncs.Add(1)
				if _, err := stream.Recv(); status.Code(err) != codes.ResourceExhausted {
					index = 0
				}
				break
			}
			if !msg.GetSnapshot() || msg.GetSnapshotDone() {
				index = max(index, msg.GetIndex())
			}
			if seen != nil {
				seen(msg, time.Now())
			}
		}
	}
}

// resyncs counts the resync signals watchClient was sent.
var resyncs atomic.Int64

// pollErrors counts the failed reads of pollClient (0 in a sound run).
var pollErrors atomic.Int64

// pollClient reads as shoalctl's wait did before Watch until ctx ends;
// started is called after each round.
func pollClient(ctx context.Context, c shoalpb.ControlClient, started func()) {
	t := time.NewTicker(waitPollInterval)
	defer t.Stop()
	for {
		if _, err := c.ListServices(ctx, &shoalpb.ListServicesRequest{}); err != nil && ctx.Err() == nil {
			pollErrors.Add(1)
		}
		page := &shoalpb.ListTasksRequest{PageSize: waitTaskPage}
		for {
			resp, err := c.ListTasks(ctx, page)
			if err != nil && ctx.Err() == nil {
				pollErrors.Add(1)
			}
			if err != nil || resp.GetNextPageToken() == "" {
				break
			}
			page.PageToken = resp.GetNextPageToken()
		}
		_, _ = c.ListNodes(ctx, &shoalpb.ListNodesRequest{})
		started()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watcher is one of fanout's watch streams: the time each task change
// arrived, by task ID and update time.
type watcher struct {
	mu      sync.Mutex
	ready   bool
	arrived map[string]time.Time // task ID + "@" + updated_at
}

func taskKey(t *shoalpb.Task) string {
	return t.GetId() + "@" + t.GetUpdatedAt().AsTime().String()
}

// fanout starts 100 watchers, scales the service from base to base+1,000
// replicas, and returns for each watcher how many milliseconds after the
// last change's commit time (its updated_at, stamped by the leader
// before Raft commits it, so the figure is an upper bound) it arrived.
// The service is scaled back off the clock.
func fanout(b *testing.B, c shoalpb.ControlClient, sel []*shoalpb.WatchSelector, base uint64) []float64 {
	const watchers, extra = 100, 1000
	b.StopTimer()
	ctx, cancel := context.WithCancel(b.Context())
	var wg sync.WaitGroup
	// The watchers stop before they are waited for, also when a wait
	// below fails the benchmark (deferred calls run last first).
	defer wg.Wait()
	defer cancel()
	ws := make([]*watcher, watchers)
	for i := range ws {
		w := &watcher{arrived: map[string]time.Time{}}
		ws[i] = w
		wg.Go(func() {
			watchClient(ctx, c, sel, func(m *shoalpb.WatchMessage, at time.Time) {
				w.mu.Lock()
				defer w.mu.Unlock()
				if m.GetSnapshot() {
					w.ready = w.ready || m.GetSnapshotDone()
					return
				}
				for _, ch := range m.GetChanges() {
					if t := ch.GetTask(); t != nil {
						w.arrived[taskKey(t)] = at
					}
				}
			})
		})
	}
	managertest.WaitFor(b, 120*time.Second, func() error {
		for i, w := range ws {
			w.mu.Lock()
			ok := w.ready
			w.mu.Unlock()
			if !ok {
				return fmt.Errorf("watcher %d has not read its snapshot", i)
			}
		}
		return nil
	})
	b.StartTimer()
	scale(b, c, base+extra)
	managertest.WaitFor(b, 120*time.Second, func() error { return countRunningVia(b, c, "web", int(base+extra)) })
	last := lastChange(b, c)
	var delays []float64
	managertest.WaitFor(b, 60*time.Second, func() error {
		delays = delays[:0]
		for i, w := range ws {
			w.mu.Lock()
			at, ok := w.arrived[taskKey(last)]
			w.mu.Unlock()
			if !ok {
				return fmt.Errorf("watcher %d has not seen task %s at %s", i, last.GetId(), last.GetUpdatedAt().AsTime())
			}
			delays = append(delays, float64(at.Sub(last.GetUpdatedAt().AsTime()).Microseconds())/1000)
		}
		return nil
	})
	b.StopTimer()
	cancel()
	scale(b, c, base)
	managertest.WaitFor(b, 120*time.Second, func() error { return countRunningVia(b, c, "web", int(base)) })
	b.StartTimer()
	return delays
}

func scale(b *testing.B, c shoalpb.ControlClient, replicas uint64) {
	if _, err := c.ScaleService(b.Context(), &shoalpb.ScaleServiceRequest{Service: "web", Replicas: replicas}); err != nil {
		b.Fatal(err)
	}
}

// lastChange returns the service's task updated last.
func lastChange(b *testing.B, c shoalpb.ControlClient) *shoalpb.Task {
	resp, err := c.ListTasks(b.Context(), &shoalpb.ListTasksRequest{Service: "web"})
	if err != nil {
		b.Fatal(err)
	}
	return slices.MaxFunc(resp.GetTasks(), func(x, y *shoalpb.Task) int {
		return x.GetUpdatedAt().AsTime().Compare(y.GetUpdatedAt().AsTime())
	})
}
