package controlapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// specsReader reads one watch stream and checks, change by change, how it
// carries the tasks' specs: with specs_once each (service, version) once,
// in a spec change just before the first task of it, at that task's
// index, and the tasks without; without it, every task with its spec and
// no spec change. Either way a spec must be the stored spec of its version.
type specsReader struct {
	stream    grpc.ServerStreamingClient[shoalpb.WatchMessage]
	state     *raftstore.State
	specsOnce bool
	sent      map[string]int                  // "service/version": spec changes read
	held      map[string]*shoalpb.ServiceSpec // the specs sent, by "service/version"
	pending   *shoalpb.WatchChange            // a spec change whose task has not come yet
	tasks     map[string]*shoalpb.Task        // by id, with the spec filled in
	index     uint64
}

func openSpecsWatch(ctx context.Context, t *testing.T, cl shoalpb.ControlClient, state *raftstore.State, specsOnce bool, since uint64) *specsReader {
	t.Helper()
	stream, err := cl.Watch(ctx, &shoalpb.WatchRequest{SpecsOnce: specsOnce, SinceIndex: since,
		Selectors: []*shoalpb.WatchSelector{{Kind: "task", Service: "web"}, {Kind: "service", Service: "web"}}})
	if err != nil {
		t.Fatal(err)
	}
	return &specsReader{stream: stream, state: state, specsOnce: specsOnce, sent: map[string]int{},
		held: map[string]*shoalpb.ServiceSpec{}, tasks: map[string]*shoalpb.Task{}}
}

func specName(service string, version uint64) string { return fmt.Sprintf("%s/%d", service, version) }

// readUntil reads messages, checking each change, until done passes
// after one.
func (r *specsReader) readUntil(done func() error) error {
	for {
		m, err := r.stream.Recv()
		if err != nil {
			return fmt.Errorf("the stream ended with %v (waiting for: %v)", err, done())
		}
		if m.GetResyncRequired() {
			return fmt.Errorf("resync at %d: %s", m.GetIndex(), m.GetResyncReason())
		}
		for _, ch := range m.GetChanges() {
			if err := r.check(ch); err != nil {
				return fmt.Errorf("change %d %s %s: %w", ch.GetIndex(), ch.GetKind(), ch.GetAction(), err)
			}
		}
		r.index = max(r.index, m.GetIndex())
		if done() == nil {
			return nil
		}
	}
}

func (r *specsReader) check(ch *shoalpb.WatchChange) error {
	if p := r.pending; p != nil {
		r.pending = nil
		task := ch.GetTask()
		if task == nil || ch.GetIndex() != p.GetIndex() || specName(task.GetServiceId(), task.GetSpecVersion()) != specName(p.GetSpec().GetServiceId(), p.GetSpec().GetVersion()) {
			return fmt.Errorf("the spec change before it (%d, %s/%d) is not followed by a task of that version at its index",
				p.GetIndex(), p.GetSpec().GetServiceId(), p.GetSpec().GetVersion())
		}
	}
	if s := ch.GetSpec(); s != nil {
		name := specName(s.GetServiceId(), s.GetVersion())
		r.sent[name]++
		switch {
		case !r.specsOnce:
			return fmt.Errorf("a spec change in a watch without specs_once")
		case ch.GetKind() != "spec" || ch.GetAction() != "current":
			return fmt.Errorf("a spec change of kind %q, action %q, want spec, current", ch.GetKind(), ch.GetAction())
		case r.sent[name] > 1:
			return fmt.Errorf("spec %s sent %d times in one stream", name, r.sent[name])
		}
		r.held[name], r.pending = s.GetSpec(), ch
		return r.stored(s.GetServiceId(), s.GetVersion(), s.GetSpec())
	}
	task := ch.GetTask()
	if task == nil {
		return nil
	}
	name := specName(task.GetServiceId(), task.GetSpecVersion())
	switch {
	case r.specsOnce && task.GetSpec() != nil:
		return fmt.Errorf("task %s comes with its spec in a specs_once watch", task.GetId())
	case r.specsOnce && r.held[name] == nil:
		return fmt.Errorf("task %s of %s comes before its spec", task.GetId(), name)
	case r.specsOnce:
		task.Spec = r.held[name]
	}
	if ch.GetAction() == "remove" {
		delete(r.tasks, task.GetId())
	} else {
		r.tasks[task.GetId()] = task
	}
	return r.stored(task.GetServiceId(), task.GetSpecVersion(), task.GetSpec())
}

// stored checks got against the state's spec of that version.
func (r *specsReader) stored(service string, version uint64, got *shoalpb.ServiceSpec) error {
	want := shoalpb.FromServiceSpec(r.state.Read().ServiceSpec(service, version))
	if !proto.Equal(got, want) {
		return fmt.Errorf("spec of %s/%d: %v, want the stored %v", service, version, got, want)
	}
	return nil
}

// tasksOf passes once the reader holds n tasks of version, each filled in.
func (r *specsReader) tasksOf(version uint64, n int) func() error {
	return func() error {
		got := 0
		for _, task := range r.tasks {
			if task.GetSpecVersion() == version && task.GetSpec() != nil {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("%d tasks of version %d with their spec, want %d", got, version, n)
		}
		return nil
	}
}

// TestWatchSpecsOnce: a specs_once watch gets each task's spec once per
// version, before the first task of it, in its snapshot and in the live
// changes, across an update that makes a new version; a watch resumed
// with since_index gets the spec again before its first task of it. A
// plain watch beside it still gets every task with its spec.
func TestWatchSpecsOnce(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	cl := c.Client(c.WaitLeader(waitTimeout))
	state := c.Manager(c.WaitLeader(waitTimeout)).Raft().State()
	created, err := cl.CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: spec("web")})
	if err != nil {
		t.Fatal(err)
	}
	id, v1 := created.GetService().GetId(), created.GetService().GetSpecVersion()
	managertest.WaitFor(t, waitTimeout, func() error {
		if n := len(state.Read().TasksByService(id)); n < 2 {
			return fmt.Errorf("%d tasks, want 2", n)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*waitTimeout)
	defer cancel()
	once := openSpecsWatch(ctx, t, cl, state, true, 0)
	plain := openSpecsWatch(ctx, t, cl, state, false, 0)
	for _, r := range []*specsReader{once, plain} {
		if err := r.readUntil(r.tasksOf(v1, 2)); err != nil {
			t.Fatalf("snapshot (specs_once %v): %v", r.specsOnce, err)
		}
	}

	// A new version, and more tasks of it.
	newer := spec("web")
	newer.Image = "busybox:1.37"
	updated, err := cl.UpdateService(t.Context(), &shoalpb.UpdateServiceRequest{Service: "web", Spec: newer})
	if err != nil {
		t.Fatal(err)
	}
	v2 := updated.GetService().GetSpecVersion()
	// Scaling may make a version of its own: its new tasks run that one.
	scaled, err := cl.ScaleService(t.Context(), &shoalpb.ScaleServiceRequest{Service: "web", Replicas: 4})
	if err != nil {
		t.Fatal(err)
	}
	v3 := scaled.GetService().GetSpecVersion()
	if v2 <= v1 || v3 < v2 {
		t.Fatalf("versions %d, %d, %d after create, update and scale: want them rising", v1, v2, v3)
	}
	for _, r := range []*specsReader{once, plain} {
		if err := r.readUntil(r.tasksOf(v3, 2)); err != nil {
			t.Fatalf("live (specs_once %v): %v", r.specsOnce, err)
		}
	}
	for _, name := range []string{specName(id, v1), specName(id, v3)} {
		if once.sent[name] != 1 {
			t.Errorf("specs_once stream: spec %s sent %d times, want once", name, once.sent[name])
		}
	}

	// A reconnect from the last index: the new stream sends the spec of
	// a task the old one had already sent before that task's next change.
	resumed := openSpecsWatch(ctx, t, cl, state, true, once.index)
	var moved *shoalpb.Task
	for _, task := range once.tasks {
		moved = task
	}
	apply(t, c, raftstore.UpsertNode{Node: &api.Node{ID: "n-1", Hostname: "n-1", Role: api.RoleWorker,
		Availability: api.AvailabilityPause, Status: api.NodeReady, UpdatedAt: time.Now()}})
	apply(t, c, raftstore.WriteTasks{At: time.Now(), Update: []*api.Task{{ID: moved.GetId(), NodeID: "n-1",
		DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskAssigned}}}})
	if err := resumed.readUntil(func() error {
		if got := resumed.tasks[moved.GetId()]; got.GetNodeId() != "n-1" {
			return fmt.Errorf("task %s on %q, want n-1", moved.GetId(), got.GetNodeId())
		}
		return nil
	}); err != nil {
		t.Fatalf("resumed: %v", err)
	}
	if name := specName(id, moved.GetSpecVersion()); resumed.sent[name] != 1 {
		t.Errorf("resumed stream: spec %s sent %d times, want once", name, resumed.sent[name])
	}
}

// TestWatchSpecsOnceWithSummaries: summaries carry no specs, so asking
// for both is refused, naming both fields.
func TestWatchSpecsOnceWithSummaries(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	cl := c.Client(c.WaitLeader(waitTimeout))
	stream, err := cl.Watch(t.Context(), &shoalpb.WatchRequest{SpecsOnce: true, Summaries: true})
	if err == nil {
		_, err = stream.Recv()
	}
	wantCode(t, err, codes.InvalidArgument, "specs_once", "summaries")
}
