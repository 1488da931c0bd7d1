package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
// wait_cpu compares the leader's CPU while 10 clients wait by Watch with
// the same 10 clients polling as shoalctl did before (ListServices, paged
// ListTasks, ListNodes every 200 ms, each behind the leader's barrier),
// both less an idle window of the same length in the same run. fanout
// scales the service by 1,000 replicas under 100 watchers and reports how
// long after its commit each watcher saw the last change.
// `make bench-watch` runs it.
func BenchmarkWatch(b *testing.B) {
	const agents, replicas = 50, 10000
	dir := b.TempDir()
	managerBin, _ := buildBinaries(b, dir)
	procs, addrs := startManagers(b, dir, managerBin, nil, "--log-level", "warn")
	var ends atomic.Int64
	startAgents(b, dir, agents, addrs, &ends, nil)
	c0 := control(b, addrs[0])
	waitNodesReady(b, c0, agents)
	leader := leaderProc(b, c0, procs, addrs)
	c := control(b, addrs[slices.Index(procs, leader)])
	if _, err := c.CreateService(b.Context(), &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
		Name: "web", Image: "img", Mode: "replicated", Replicas: replicas,
	}}); err != nil {
		b.Fatal(err)
	}
	managertest.WaitFor(b, 300*time.Second, func() error { return countRunningVia(b, c, "web", replicas) })
	svc, err := c.GetService(b.Context(), &shoalpb.GetServiceRequest{Service: "web"})
	if err != nil {
		b.Fatal(err)
	}
	sel := []*shoalpb.WatchSelector{{Kind: "node"},
		{Kind: "service", Service: svc.GetId()}, {Kind: "task", Service: svc.GetId()}}
	b.Run("wait_cpu", func(b *testing.B) {
		var idle, watch, poll float64
		for range b.N {
			idle += cpuDuring(b, leader, 0, nil)
			watch += cpuDuring(b, leader, 10, func(ctx context.Context) { watchClient(ctx, c, sel, nil) })
			poll += cpuDuring(b, leader, 10, func(ctx context.Context) { pollClient(ctx, c) })
		}
		n := float64(b.N)
		b.ReportMetric(idle/n, "idle_cpu_ms")
		b.ReportMetric(watch/n, "watch_cpu_ms")
		b.ReportMetric(poll/n, "poll_cpu_ms")
		b.ReportMetric(float64(pollErrors.Load()), "poll_errors")
		b.ReportMetric(max(watch-idle, 1)/max(poll-idle, 1), "watch/poll_net")
	})
	b.Run("fanout", func(b *testing.B) {
		var all []float64
		for range b.N {
			all = append(all, fanout(b, c, sel, replicas)...)
		}
		slices.Sort(all)
		b.ReportMetric(all[len(all)-1], "max_ms")
		b.ReportMetric(all[len(all)*99/100], "p99_ms")
	})
}

// cpuDuring runs n clients for cpuWindow and returns the leader's CPU
// time (user and system) in that window, in milliseconds.
func cpuDuring(b *testing.B, leader *proc, n int, client func(context.Context)) float64 {
	ctx, cancel := context.WithCancel(b.Context())
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { client(ctx) })
	}
	before := leaderCPU(b, leader)
	select {
	case <-time.After(cpuWindow):
	case <-ctx.Done():
	}
	after := leaderCPU(b, leader)
	cancel()
	wg.Wait()
	return float64((after - before).Milliseconds())
}

func leaderCPU(b *testing.B, leader *proc) time.Duration {
	d, err := procCPU(leader.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// watchClient follows a watch as shoalctl's wait does until ctx ends;
// seen, when set, gets each message and the time it arrived.
func watchClient(ctx context.Context, c shoalpb.ControlClient, sel []*shoalpb.WatchSelector, seen func(*shoalpb.WatchMessage, time.Time)) {
	stream, err := c.Watch(ctx, &shoalpb.WatchRequest{Selectors: sel})
	if err != nil {
		return
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return
		}
		if seen != nil {
			seen(msg, time.Now())
		}
	}
}

// pollErrors counts the failed reads of pollClient (0 in a sound run).
var pollErrors atomic.Int64

// pollClient reads as shoalctl's wait did before Watch until ctx ends.
func pollClient(ctx context.Context, c shoalpb.ControlClient) {
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
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
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
