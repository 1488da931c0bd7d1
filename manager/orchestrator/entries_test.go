package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// entryRecorder is a fake at the Applier seam: it encodes each command as
// a Raft member does (so the size cap applies), records the entry, and
// forwards it to the store, unless fail says to fail it (n counts the
// commands, from 0).
type entryRecorder struct {
	next    raftstore.Applier
	fail    func(n int, cmd raftstore.Command) error
	entries []recordedEntry // only the orchestrator's goroutine calls Apply
}

type recordedEntry struct {
	bytes int
	cmd   raftstore.Command
}

func (r *entryRecorder) Apply(ctx context.Context, cmd raftstore.Command) (raftstore.Response, error) {
	n := len(r.entries)
	b, err := raftstore.EncodeCommand(cmd)
	if err != nil {
		return raftstore.Response{}, err
	}
	r.entries = append(r.entries, recordedEntry{bytes: len(b), cmd: cmd})
	if r.fail != nil {
		if err := r.fail(n, cmd); err != nil {
			return raftstore.Response{}, err
		}
	}
	return r.next.Apply(ctx, cmd)
}

// entryParts splits an entry into its WriteTasks and AssignTasks.
func entryParts(cmd raftstore.Command) (w raftstore.WriteTasks, a raftstore.AssignTasks) {
	parts := []raftstore.Command{cmd}
	if b, ok := cmd.(raftstore.Batch); ok {
		parts = b.Commands
	}
	for _, p := range parts {
		switch c := p.(type) {
		case raftstore.WriteTasks:
			w = c
		case raftstore.AssignTasks:
			a = c
		}
	}
	return w, a
}

// entryTasks counts the distinct tasks an entry writes.
func entryTasks(cmd raftstore.Command) int {
	w, a := entryParts(cmd)
	ids := map[string]bool{}
	for _, t := range append(append([]*api.Task(nil), w.Create...), w.Update...) {
		ids[t.ID] = true
	}
	for _, id := range w.Delete {
		ids[id] = true
	}
	for _, x := range a.Assignments {
		ids[x.TaskID] = true
	}
	for _, x := range a.Pending {
		ids[x.TaskID] = true
	}
	return len(ids)
}

// bigStore is a local store with nodes room for n replicas of replicated().
func bigStore(t *testing.T, replicas int) (*raftstore.State, raftstore.Applier) {
	t.Helper()
	state := raftstore.NewState()
	apply := raftstore.NewLocalApplier(state)
	var cmds []raftstore.Command
	for i := range replicas/40 + 1 { // 4 CPUs each: 40 tasks of 0.1 CPU
		id := fmt.Sprintf("node-%03d", i)
		cmds = append(cmds, raftstore.UpsertNode{Node: &api.Node{ID: id, Hostname: id, Role: api.RoleWorker,
			Status: api.NodeReady, Resources: api.Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30}}})
	}
	if _, err := apply.Apply(t.Context(), raftstore.Batch{Commands: cmds}); err != nil {
		t.Fatal(err)
	}
	return state, apply
}

func checkEntryBudget(t *testing.T, entries []recordedEntry) {
	t.Helper()
	for i, e := range entries {
		if n := entryTasks(e.cmd); n > maxEntryTasks {
			t.Errorf("entry %d writes %d tasks, over the budget of %d", i, n, maxEntryTasks)
		}
		if e.bytes > maxEntryBytes {
			t.Errorf("entry %d is %d bytes, over the budget of %d", i, e.bytes, maxEntryBytes)
		}
	}
}

// TestPassSplitsIntoBoundedEntries: a pass that creates and places 2,500
// tasks writes them in entries within the budget, ordered by node then
// slot, each holding the assignments of the tasks it creates.
func TestPassSplitsIntoBoundedEntries(t *testing.T) {
	const replicas = 2500
	state, apply := bigStore(t, replicas)
	svc := &api.Service{ID: "svc-web", Spec: replicated("web", replicas)}
	if _, err := apply.Apply(t.Context(), raftstore.CreateService{Service: svc}); err != nil {
		t.Fatal(err)
	}
	rec := &entryRecorder{next: apply}
	o := New(state, rec, Options{Logger: testLogger(t)})
	if _, err := o.pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(rec.entries) != 3 {
		t.Fatalf("%d entries, want 3 (2,500 tasks, at most %d an entry)", len(rec.entries), maxEntryTasks)
	}
	checkEntryBudget(t, rec.entries)
	type place struct {
		node string
		slot uint64
	}
	var last place
	for i, e := range rec.entries {
		w, a := entryParts(e.cmd)
		if len(a.Assignments) != len(w.Create) {
			t.Fatalf("entry %d creates %d tasks and assigns %d", i, len(w.Create), len(a.Assignments))
		}
		for j, task := range w.Create {
			if a.Assignments[j].TaskID != task.ID {
				t.Fatalf("entry %d: create %d is task %s, assignment %d task %s", i, j, task.ID, j, a.Assignments[j].TaskID)
			}
			at := place{a.Assignments[j].NodeID, task.Slot}
			if at.node < last.node || (at.node == last.node && at.slot <= last.slot) {
				t.Fatalf("entry %d: slot %d on %s comes after slot %d on %s", i, at.slot, at.node, last.slot, last.node)
			}
			last = at
		}
		t.Logf("entry %d: %d bytes, %d tasks", i, e.bytes, entryTasks(e.cmd))
	}
	v := state.Read()
	if n := count(v.TasksByService(svc.ID), inState(api.TaskAssigned)); n != replicas {
		t.Fatalf("%d tasks assigned, want %d", n, replicas)
	}
}

// TestSplitRolloutKeepsSlotsWhole: a stop-first update of every slot at
// once shuts down and replaces 1,500 tasks over several entries; each
// entry that stops a slot's task creates its replacement.
func TestSplitRolloutKeepsSlotsWhole(t *testing.T) {
	const replicas = 1500
	state, apply := bigStore(t, 2*replicas)
	h := &harness{t: t, state: state, apply: apply, clock: newFakeClock()}
	svc := h.createService(replicated("web", replicas))
	o := New(h.state, h.apply, Options{Logger: testLogger(t), Clock: h.clock})
	if _, err := o.pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	h.runAll(h.state.Read())
	updateImage(h, svc, 0, "")

	rec := &entryRecorder{next: h.apply}
	o = New(h.state, rec, Options{Logger: testLogger(t), Clock: h.clock})
	if _, err := o.pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(rec.entries) < 2 {
		t.Fatalf("%d entries for %d replacements, want several", len(rec.entries), replicas)
	}
	checkEntryBudget(t, rec.entries)
	stopped := 0
	for i, e := range rec.entries {
		w, _ := entryParts(e.cmd)
		created := map[uint64]bool{}
		for _, task := range w.Create {
			created[task.Slot] = true
		}
		for _, task := range w.Update {
			if task.DesiredState == api.TaskShutdown {
				stopped++
				if !created[task.Slot] {
					t.Errorf("entry %d stops slot %d without creating its replacement", i, task.Slot)
				}
			}
		}
	}
	if stopped != replicas {
		t.Fatalf("%d tasks stopped, want %d", stopped, replicas)
	}
}

// TestFailedEntryLeavesTheRestToTheNextPass: the second entry of a pass
// does not commit; the first stands, every slot is either as before or as
// after the pass, and the next pass completes the work.
func TestFailedEntryLeavesTheRestToTheNextPass(t *testing.T) {
	const replicas = 2200
	state, apply := bigStore(t, replicas)
	svc := &api.Service{ID: "svc-web", Spec: replicated("web", replicas)}
	if _, err := apply.Apply(t.Context(), raftstore.CreateService{Service: svc}); err != nil {
		t.Fatal(err)
	}
	errLost := errors.New("lost the quorum")
	rec := &entryRecorder{next: apply, fail: func(n int, _ raftstore.Command) error {
		if n == 1 {
			return fmt.Errorf("%w: %w", raftstore.ErrNoLeader, errLost)
		}
		return nil
	}}
	o := New(state, rec, Options{Logger: slog.New(slog.DiscardHandler)})
	if _, err := o.pass(t.Context()); !errors.Is(err, errLost) {
		t.Fatalf("pass: %v, want the failed entry's error", err)
	}
	if len(rec.entries) != 2 {
		t.Fatalf("%d entries tried, want 2 (none after the failure)", len(rec.entries))
	}
	v := state.Read()
	bySlot := map[uint64]int{}
	for _, task := range v.TasksByService(svc.ID) {
		bySlot[task.Slot]++
		if task.Status.State != api.TaskAssigned {
			t.Fatalf("slot %d half done: task %s is %s", task.Slot, task.ID, task.Status.State)
		}
	}
	if len(bySlot) != maxEntryTasks {
		t.Fatalf("%d slots after the first entry, want %d", len(bySlot), maxEntryTasks)
	}
	if _, err := o.pass(t.Context()); err != nil {
		t.Fatalf("next pass: %v", err)
	}
	v = state.Read()
	for slot := uint64(1); slot <= replicas; slot++ {
		bySlot[slot] = 0
	}
	for _, task := range v.TasksByService(svc.ID) {
		bySlot[task.Slot]++
	}
	for slot, n := range bySlot {
		if n != 1 || slot < 1 || slot > replicas {
			t.Fatalf("slot %d has %d tasks, want 1 (of %d slots)", slot, n, replicas)
		}
	}
}

// TestOversizeEntryIsCutInTwo: when the store refuses an entry as too
// large (the estimate fell short), the pass commits it in halves.
func TestOversizeEntryIsCutInTwo(t *testing.T) {
	const replicas = 40
	state, apply := bigStore(t, replicas)
	svc := &api.Service{ID: "svc-web", Spec: replicated("web", replicas)}
	if _, err := apply.Apply(t.Context(), raftstore.CreateService{Service: svc}); err != nil {
		t.Fatal(err)
	}
	rec := &entryRecorder{next: apply, fail: func(_ int, cmd raftstore.Command) error {
		if n := entryTasks(cmd); n > replicas/4 {
			return fmt.Errorf("entry of %d tasks: %w", n, raftstore.ErrEntryTooLarge)
		}
		return nil
	}}
	o := New(state, rec, Options{Logger: slog.New(slog.DiscardHandler)})
	if _, err := o.pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	committed := 0
	for _, e := range rec.entries {
		if n := entryTasks(e.cmd); n <= replicas/4 {
			committed += n
		}
	}
	if committed != replicas {
		t.Fatalf("%d tasks in committed entries, want %d (entries %d)", committed, replicas, len(rec.entries))
	}
	if n := count(state.Read().TasksByService(svc.ID), inState(api.TaskAssigned)); n != replicas {
		t.Fatalf("%d tasks assigned, want %d", n, replicas)
	}
}

// waitTasks polls until the leader's state holds want tasks of the
// service in state s.
func waitTasks(tb testing.TB, state *raftstore.State, serviceID string, s api.TaskState, want int, within time.Duration) {
	tb.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		changed := state.Changed()
		n := count(state.Read().TasksByService(serviceID), inState(s))
		if n == want {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			tb.Fatalf("%d of %d tasks %s after %s", n, want, s, within)
		}
	}
}
