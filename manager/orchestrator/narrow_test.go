package orchestrator

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// TestNarrowPassMatchesFullPass: on the same state, a pass narrowed to what
// the store's events named plans exactly what a full pass plans, round
// after round of changes — task failures, a node down, a drain, a removed
// service, scaling, room freed for a task of a service no event named —
// while it reads fewer services' tasks. The narrowed orchestrator carries
// its node loads from pass to pass; the full one rebuilds them every time.
func TestNarrowPassMatchesFullPass(t *testing.T) {
	state := raftstore.NewState()
	h := &harness{t: t, state: state, apply: raftstore.NewLocalApplier(state), clock: newFakeClock()}
	for _, id := range []string{"n1", "n2", "n3", "n4", "n5"} {
		h.addNode(id, map[string]string{"zone": id})
	}
	web := h.createService(replicated("web", 6))
	dbSpec := replicated("db", 2)
	dbSpec.Endpoint.Ports = []api.PortConfig{{TargetPort: 5432, PublishedPort: 5432, PublishMode: api.PublishModeHost}}
	db := h.createService(dbSpec)
	agentSpec := replicated("agent", 0)
	agentSpec.Mode = api.ModeGlobal
	h.createService(agentSpec)
	workerSpec := replicated("worker", 3)
	workerSpec.DependsOn = []api.Dependency{{Service: "web", Condition: api.DependStarted}}
	h.createService(workerSpec)
	// hog fills most of every node; late fits only once hog is gone (and
	// is placed after hog: services go by id).
	hogSpec := replicated("hog", 5)
	hogSpec.Resources.Reservations = api.Resources{NanoCPUs: 3e9, MemoryBytes: 1 << 30}
	hogSpec.Placement.MaxReplicasPerNode = 1
	hog := h.createService(hogSpec)
	lateSpec := replicated("late", 1)
	lateSpec.Resources.Reservations = api.Resources{NanoCPUs: 2e9, MemoryBytes: 1 << 30}
	late := h.createService(lateSpec)
	gone := h.createService(replicated("gone", 2))

	full := New(state, h.apply, Options{Logger: testLogger(t), Clock: h.clock})
	// Steady state: passes and agents until a pass finds nothing to do.
	for i := 0; ; i++ {
		idx := state.Read().Index()
		if _, err := full.pass(t.Context()); err != nil {
			t.Fatal(err)
		}
		h.runAll(state.Read())
		if state.Read().Index() == idx {
			break
		}
		if i > 20 {
			t.Fatalf("no steady state after %d passes\n%s", i, dump(state.Read()))
		}
	}
	if n := count(live(state.Read(), late.ID), func(t *api.Task) bool { return t.Status.State >= api.TaskAssigned }); n != 0 {
		t.Fatalf("late placed before hog left")
	}
	narrow := New(state, h.apply, Options{Logger: testLogger(t), Clock: h.clock})
	if _, err := narrow.prepare(nil); err != nil { // its first pass is full
		t.Fatal(err)
	}
	w := newWatcher(state)
	t.Cleanup(w.cancel)

	firstOf := func(svc *api.Service) *api.Task {
		for _, task := range state.Read().TasksByService(svc.ID) {
			if task.DesiredState == api.TaskRunning && task.Status.State == api.TaskRunning {
				return task
			}
		}
		t.Fatalf("no running task of %s\n%s", svc.Spec.Name, dump(state.Read()))
		return nil
	}
	rounds := []struct {
		name   string
		change func()
	}{
		{"a web task fails, db scales up, n5 goes down, gone is removed", func() {
			h.report(firstOf(web), api.TaskFailed, 1)
			dbSpec.Replicas = 3
			h.updateService(db.ID, dbSpec)
			h.setNodeStatus("n5", api.NodeDown)
			h.do(raftstore.RemoveService{ID: gone.ID, At: h.clock.Now()})
		}},
		{"agents report, n2 drains", func() {
			h.runAll(state.Read())
			h.setAvailability("n2", api.AvailabilityDrain)
		}},
		{"hog scales to zero", func() {
			h.runAll(state.Read())
			hogSpec.Replicas = 0
			h.updateService(hog.ID, hogSpec)
		}},
		{"hog's tasks stop: room for late, which no event names", func() {
			h.runAll(state.Read())
		}},
		{"agents report, web scales down", func() {
			h.runAll(state.Read())
			spec := web.Spec
			spec.Replicas = 4
			h.updateService(web.ID, spec)
		}},
	}
	narrowed := 0 // rounds that read fewer services' tasks than the full pass
	for _, r := range rounds {
		r.change()
		h.clock.Advance(time.Second)
		sc := newScope(false)
		w.drain(sc)
		pn, err := narrow.prepare(sc)
		if err != nil {
			t.Fatalf("%s: narrowed pass: %v", r.name, err)
		}
		pf, err := full.prepare(nil)
		if err != nil {
			t.Fatalf("%s: full pass: %v", r.name, err)
		}
		if pn.index != pf.index {
			t.Fatalf("%s: passes over indexes %d and %d", r.name, pn.index, pf.index)
		}
		if got, want := planText(pn), planText(pf); got != want {
			t.Errorf("%s: the narrowed pass plans\n%s\nthe full pass plans\n%s", r.name, got, want)
		}
		if got, want := loadsText(&narrow.loads), loadsText(&full.loads); got != want {
			t.Errorf("%s: narrowed node loads\n%s\nrebuilt\n%s", r.name, got, want)
		}
		if pn.all != nil {
			t.Errorf("%s: the narrowed pass read every task", r.name)
		}
		if len(pn.bySvc) < len(pf.bySvc) {
			narrowed++
		}
		if pf.plan.empty() && len(pf.statuses) == 0 {
			t.Errorf("%s: the full pass plans nothing: the round checks nothing", r.name)
		}
		if _, err := full.pass(t.Context()); err != nil {
			t.Fatalf("%s: commit: %v", r.name, err)
		}
	}
	if narrowed < 2 {
		t.Errorf("%d rounds read fewer services' tasks than a full pass; want at least 2", narrowed)
	}
	v := state.Read()
	if n := count(live(v, late.ID), func(t *api.Task) bool { return t.Status.State >= api.TaskAssigned }); n != 1 {
		t.Errorf("late has %d tasks placed after hog left; want 1\n%s", n, dump(v))
	}
}

// planText renders what a pass plans, with the ids of the tasks it creates
// (random) replaced by what they are, each part sorted: the order of the
// commands does not change what they do.
func planText(p *pass) string {
	names := make(map[string]string)
	for _, t := range p.plan.creates {
		names[t.ID] = fmt.Sprintf("new(%s slot %d node %q attempt %d)", t.ServiceName, t.Slot, t.NodeID, t.Attempt)
	}
	name := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		return id
	}
	var creates, updates, deletes, assigns, pending []string
	for _, t := range p.plan.creates {
		creates = append(creates, fmt.Sprintf("%s %s %q %q not before %s", name(t.ID), t.Status.State,
			t.Status.Message, t.Status.PendingReason, t.NotBefore.Format(time.RFC3339)))
	}
	for _, id := range p.plan.order {
		u := p.plan.updates[id]
		updates = append(updates, fmt.Sprintf("%s desired %s %s %q", id, u.DesiredState, u.Status.State, u.Status.Message))
	}
	deletes = append(deletes, p.plan.deletes...)
	for _, a := range p.plan.assigns {
		assigns = append(assigns, name(a.TaskID)+" → "+a.NodeID)
	}
	for _, pr := range p.plan.pending {
		pending = append(pending, name(pr.TaskID)+": "+pr.Reason)
	}
	var statuses []string
	for _, s := range p.statuses {
		statuses = append(statuses, fmt.Sprintf("%s %s %q", s.ID, s.Status.State, s.Status.Message))
	}
	var b strings.Builder
	for _, part := range []struct {
		name  string
		lines []string
	}{{"create", creates}, {"update", updates}, {"delete", deletes}, {"assign", assigns},
		{"pending", pending}, {"status", statuses}} {
		slices.Sort(part.lines)
		for _, l := range part.lines {
			fmt.Fprintf(&b, "%s %s\n", part.name, l)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.pending)) {
		fmt.Fprintf(&b, "waiting %s: %d\n", k, p.pending[k])
	}
	return b.String()
}

// loadsText renders the node loads (free room out of a large capacity).
func loadsText(l *nodeLoads) string {
	capacity := api.Resources{NanoCPUs: 1e12, MemoryBytes: 1 << 40}
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(l.byNode)) {
		load := l.byNode[n]
		fmt.Fprintf(&b, "%s free %+v tasks %d ports %v\n", n, load.Free(capacity), load.Tasks, load.Ports)
	}
	fmt.Fprintf(&b, "%d tasks held at index %d\n", len(l.held), l.index)
	return b.String()
}

// TestNodeLoadsHoldNothingMeasurable: a task that holds no resources and
// does not count toward spread (told to stop, reserving nothing) still
// keeps its node's entry until it goes, and the loads brought forward
// task by task match those rebuilt.
func TestNodeLoadsHoldNothingMeasurable(t *testing.T) {
	free := &api.ServiceSpec{}
	reserving := &api.ServiceSpec{Resources: api.ResourceRequirements{Reservations: api.Resources{NanoCPUs: 1e9}}}
	specs := map[string]*api.ServiceSpec{"free": free, "reserving": reserving}
	specOf := func(t *api.Task) *api.ServiceSpec { return specs[t.ServiceID] }
	stopping := &api.Task{ID: "a", ServiceID: "free", NodeID: "n1", DesiredState: api.TaskShutdown,
		Status: api.TaskStatus{State: api.TaskRunning}}
	running := &api.Task{ID: "b", ServiceID: "reserving", NodeID: "n1", DesiredState: api.TaskRunning,
		Status: api.TaskStatus{State: api.TaskRunning}}
	var l, want nodeLoads
	l.rebuild(1, []*api.Task{stopping, running}, specOf)
	l.drop(running.ID)
	want.rebuild(2, []*api.Task{stopping}, specOf)
	want.index = 1
	if got, w := loadsText(&l), loadsText(&want); got != w {
		t.Errorf("after the reserving task left:\n%s\nwant\n%s", got, w)
	}
	l.drop(stopping.ID)
	if len(l.byNode) != 0 || len(l.held) != 0 || len(l.holders) != 0 {
		t.Errorf("after every task left: %d nodes, %d tasks, %d holders; want none", len(l.byNode), len(l.held), len(l.holders))
	}
}
