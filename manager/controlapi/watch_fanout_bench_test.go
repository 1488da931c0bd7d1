package controlapi_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
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
	bytes   int // of the messages after the snapshot (undecoded watchers)
}

func (w *fanWatcher) add(m scanned, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ready = w.ready || m.done
	if m.snapshot {
		return
	}
	w.bytes += m.size
	for _, i := range m.indexes {
		if _, ok := w.arrived[i]; !ok {
			w.arrived[i] = at
		}
	}
}

// scanned is what a fanWatcher reads from a message.
type scanned struct {
	snapshot, done, resync bool
	indexes                []uint64 // of the changes
	size                   int      // the message's bytes, when it was read undecoded
}

func scanDecoded(m *shoalpb.WatchMessage) scanned {
	s := scanned{snapshot: m.GetSnapshot(), done: m.GetSnapshotDone(), resync: m.GetResyncRequired()}
	for _, ch := range m.GetChanges() {
		s.indexes = append(s.indexes, ch.GetIndex())
	}
	return s
}

// rawMessage is a WatchMessage as it arrived: the undecoded watchers
// stand for clients on hosts of their own, whose decoding does not share
// the manager's cores.
type rawMessage struct{ b []byte }

// rawCodec leaves a rawMessage undecoded and is the proto codec for
// everything else.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2("proto").Marshal(v)
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*rawMessage); ok {
		r.b = data.Materialize()
		return nil
	}
	return encoding.GetCodecV2("proto").Unmarshal(data, v)
}

// scan reads the flags of the message and its changes' indexes (fields
// 3, 4, 5 and 2; a change's index is its field 1).
func (r rawMessage) scan() (scanned, error) {
	s := scanned{size: len(r.b)}
	for b := r.b; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return s, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 2 && typ == protowire.BytesType:
			ch, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return s, protowire.ParseError(n)
			}
			b = b[n:]
			if num, typ, n := protowire.ConsumeTag(ch); n > 0 && num == 1 && typ == protowire.VarintType {
				i, _ := protowire.ConsumeVarint(ch[n:])
				s.indexes = append(s.indexes, i)
			}
			continue
		case typ == protowire.VarintType && (num == 3 || num == 4 || num == 5):
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return s, protowire.ParseError(n)
			}
			b = b[n:]
			s.snapshot = s.snapshot || (num == 3 && x != 0)
			s.done = s.done || (num == 4 && x != 0)
			s.resync = s.resync || (num == 5 && x != 0)
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return s, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return s, nil
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
// change itself; shared encodes each change once for all of them;
// specs_once (as shoalctl watches) shares the encodings too and has each
// spec sent once instead of with every task. For the undecoded watchers
// it also reports the bytes each was sent per scale.
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
	// watch starts the watchers (decoding what they are sent, or not) and
	// returns once each has read its snapshot.
	var ws []*fanWatcher
	watch := func(ctx context.Context, wg *sync.WaitGroup, decode, specsOnce bool) {
		ws = make([]*fanWatcher, watchers)
		for i := range ws {
			w := &fanWatcher{arrived: map[uint64]time.Time{}}
			ws[i] = w
			var opts []grpc.CallOption
			if !decode {
				opts = append(opts, grpc.ForceCodecV2(rawCodec{}))
			}
			stream, err := cl.Watch(ctx, &shoalpb.WatchRequest{Selectors: sel, SpecsOnce: specsOnce}, opts...)
			if err != nil {
				b.Fatal(err)
			}
			wg.Go(func() {
				for {
					var m scanned
					var err error
					if decode {
						var msg *shoalpb.WatchMessage
						if msg, err = stream.Recv(); err == nil {
							m = scanDecoded(msg)
						}
					} else {
						var raw rawMessage
						if err = stream.RecvMsg(&raw); err == nil {
							m, err = raw.scan()
						}
					}
					if err != nil || m.resync {
						return
					}
					w.add(m, time.Now())
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
	}
	received := func() int {
		n := 0
		for _, w := range ws {
			w.mu.Lock()
			n += w.bytes
			w.mu.Unlock()
		}
		return n
	}
	// scale scales the service up by extra, brings its new tasks to
	// running and returns each watcher's delay in ms and the bytes the
	// watchers were sent meanwhile, on average.
	scale := func(b *testing.B) ([]float64, float64) {
		before := received()
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
		return delays, float64(received()-before) / float64(len(ws))
	}
	type mode struct {
		name   string
		shared bool
	}
	for _, client := range []struct {
		name   string
		decode bool
	}{{"decoded", true}, {"undecoded", false}} {
		for _, watchers := range []struct {
			specsOnce bool
			modes     []mode
		}{{false, []mode{{"per_watcher", false}, {"shared", true}}}, {true, []mode{{"specs_once", true}}}} {
			ctx, cancel := context.WithCancel(b.Context())
			var wg sync.WaitGroup
			watch(ctx, &wg, client.decode, watchers.specsOnce)
			for _, mode := range watchers.modes {
				b.Run(client.name+"/"+mode.name, func(b *testing.B) {
					defer controlapi.ShareWatchChanges(controlapi.ShareWatchChanges(mode.shared))
					var medians, worst, sent []float64
					for range b.N {
						d, bytes := scale(b)
						slices.Sort(d)
						medians = append(medians, d[len(d)/2])
						worst = append(worst, d[len(d)-1])
						sent = append(sent, bytes)
					}
					slices.Sort(medians)
					b.ReportMetric(medians[len(medians)/2], "median_ms")
					b.ReportMetric(slices.Max(worst), "max_ms")
					if !client.decode {
						slices.Sort(sent)
						b.ReportMetric(sent[len(sent)/2], "B/watcher/scale")
					}
				})
			}
			cancel()
			wg.Wait()
		}
	}
}
