package controlapi_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/manager/controlapi"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// fanWatcher is one watch stream of BenchmarkWatchFanOut: when each
// index first arrived.
type fanWatcher struct {
	mu      sync.Mutex
	ready   bool
	arrived map[uint64]time.Time
}

func (w *fanWatcher) at(index uint64) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.arrived[index]
	return t, ok
}

// BenchmarkWatchFanOut: 100 watchers (shoalctl's wait selectors) of one
// manager holding a service of 10,000 tasks, on one connection, see a
// 1,000-replica scale as the cluster commits it: the orchestrator's new
// tasks in one entry, then each of their five steps from pending to
// running in entries of 100, as agents report them (6,000 changes in 51
// entries). It reports, over the 100 watchers, the median and the worst
// delay from the proposal of the last entry to its arrival. per_watcher
// is the baseline of every watcher converting and marshalling every
// change itself; shared encodes each change once for all of them.
func BenchmarkWatchFanOut(b *testing.B) {
	const tasks, watchers, extra, step = 10000, 100, 1000, 100
	// The node the tasks run on has no agent: it must not be declared down.
	c := managertest.StartCluster(b, 1, managertest.Options{Edit: func(cfg *manager.Config) {
		cfg.NodeGracePeriod, cfg.NodeReconnectWindow = time.Hour, time.Hour
	}})
	l := c.WaitLeader(waitTimeout)
	cl := c.Client(l)
	// Paused: the scheduler leaves the tasks to the benchmark.
	apply(b, c, raftstore.UpsertNode{Node: &api.Node{ID: "n-1", Hostname: "n-1", Role: api.RoleWorker,
		Availability: api.AvailabilityPause, Status: api.NodeReady, UpdatedAt: time.Now()}})
	if _, err := cl.UpdateCluster(b.Context(), &shoalpb.UpdateClusterRequest{MaxReplicas: proto.Uint64(10 * tasks)}); err != nil {
		b.Fatal(err)
	}
	web := spec("web")
	web.Replicas = tasks
	created, err := cl.CreateService(b.Context(), &shoalpb.CreateServiceRequest{Spec: web})
	if err != nil {
		b.Fatal(err)
	}
	id := created.GetService().GetId()
	state := c.Manager(l).Raft().State()
	replicas := tasks
	// await returns the service's tasks of slots above from once the
	// orchestrator has created all of them up to replicas.
	await := func(from int) []*api.Task {
		var out []*api.Task
		managertest.WaitFor(b, 120*time.Second, func() error {
			out = out[:0]
			for _, t := range state.Read().TasksByService(id) {
				if int(t.Slot) > from && !t.Status.State.Terminal() {
					out = append(out, t)
				}
			}
			if len(out) < replicas-from {
				return fmt.Errorf("%d of %d tasks created", len(out), replicas-from)
			}
			return nil
		})
		return out
	}
	await(0)
	sel := []*shoalpb.WatchSelector{{Kind: "node"}, {Kind: "service", Service: id}, {Kind: "task", Service: id}}
	ctx, cancel := context.WithCancel(b.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	ws := make([]*fanWatcher, watchers)
	for i := range ws {
		w := &fanWatcher{arrived: map[uint64]time.Time{}}
		ws[i] = w
		stream, err := cl.Watch(ctx, &shoalpb.WatchRequest{Selectors: sel})
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			for {
				m, err := stream.Recv()
				if err != nil || m.GetResyncRequired() {
					return
				}
				at := time.Now()
				w.mu.Lock()
				w.ready = w.ready || m.GetSnapshotDone()
				for _, ch := range m.GetChanges() {
					if _, ok := w.arrived[ch.GetIndex()]; !ok && !m.GetSnapshot() {
						w.arrived[ch.GetIndex()] = at
					}
				}
				w.mu.Unlock()
			}
		})
	}
	managertest.WaitFor(b, 300*time.Second, func() error {
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
	// scale scales the service up by extra, brings its new tasks to
	// running and returns each watcher's delay in ms.
	scale := func(b *testing.B) []float64 {
		from := replicas
		replicas += extra
		if _, err := cl.ScaleService(b.Context(), &shoalpb.ScaleServiceRequest{Service: "web", Replicas: uint64(replicas)}); err != nil {
			b.Fatal(err)
		}
		added := await(from)
		var last uint64
		var proposed time.Time
		for _, st := range []api.TaskState{api.TaskAssigned, api.TaskAccepted, api.TaskPreparing, api.TaskStarting, api.TaskRunning} {
			for i := 0; i < extra; i += step {
				var up []*api.Task
				for _, t := range added[i : i+step] {
					up = append(up, &api.Task{ID: t.ID, NodeID: "n-1", DesiredState: api.TaskRunning, Status: api.TaskStatus{State: st}})
				}
				proposed = time.Now()
				resp := apply(b, c, raftstore.WriteTasks{Update: up, At: proposed})
				if r, ok := resp.Value.(raftstore.WriteTasksResult); !ok || r.Updated != step {
					b.Fatalf("update to %s: %+v, want %d updated", st, resp.Value, step)
				}
				last = resp.Index
			}
		}
		var delays []float64
		managertest.WaitFor(b, 120*time.Second, func() error {
			delays = delays[:0]
			for i, w := range ws {
				at, ok := w.at(last)
				if !ok {
					return fmt.Errorf("watcher %d has not seen index %d", i, last)
				}
				delays = append(delays, float64(at.Sub(proposed).Microseconds())/1000)
			}
			return nil
		})
		return delays
	}
	for _, mode := range []struct {
		name   string
		shared bool
	}{{"per_watcher", false}, {"shared", true}} {
		b.Run(mode.name, func(b *testing.B) {
			defer controlapi.ShareWatchChanges(controlapi.ShareWatchChanges(mode.shared))
			var medians, worst []float64
			for range b.N {
				d := scale(b)
				slices.Sort(d)
				medians = append(medians, d[len(d)/2])
				worst = append(worst, d[len(d)-1])
			}
			slices.Sort(medians)
			b.ReportMetric(medians[len(medians)/2], "median_ms")
			b.ReportMetric(slices.Max(worst), "max_ms")
		})
	}
}
