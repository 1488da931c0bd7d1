package orchestrator

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/poll"
	"github.com/shoal-sched/shoal/raftstore"
)

// passRecord is what one pass reconciled, over the state at index.
type passRecord struct {
	index    uint64
	services []string
	all      bool
}

// passLog records the passes of an orchestrator (its onPass hook).
type passLog struct {
	mu     sync.Mutex
	passes []passRecord
}

func (l *passLog) record(index uint64, services []string, all bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.passes = append(l.passes, passRecord{index, slices.Clone(services), all})
}

// since returns the passes over a state at index from or later.
func (l *passLog) since(from uint64) []passRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []passRecord
	for _, p := range l.passes {
		if p.index >= from {
			out = append(out, p)
		}
	}
	return out
}

// newScopeHarness starts an orchestrator whose passes go to the returned
// log and whose watch loses the events drop says yes to.
func newScopeHarness(t *testing.T, drop func(raftstore.Event) bool) (*harness, *passLog) {
	state := raftstore.NewState()
	h := &harness{t: t, state: state, apply: raftstore.NewLocalApplier(state), clock: newFakeClock()}
	log := &passLog{}
	h.configure = func(o *Orchestrator) {
		o.onPass = log.record
		o.drop = drop
	}
	return h, log
}

// settle waits until a pass has seen the latest state (and so, as it wrote
// nothing, no other is coming).
func settle(t *testing.T, h *harness, log *passLog) {
	t.Helper()
	poll.Until(t, waitTimeout, func() error {
		idx := h.state.Read().Index()
		if len(log.since(idx)) == 0 {
			return fmt.Errorf("no pass over index %d yet", idx)
		}
		return nil
	})
}

// waitPass waits for a pass over index from or later and returns the
// first.
func waitPass(t *testing.T, log *passLog, from uint64) passRecord {
	t.Helper()
	var got passRecord
	poll.Until(t, waitTimeout, func() error {
		ps := log.since(from)
		if len(ps) == 0 {
			return fmt.Errorf("no pass over index %d yet", from)
		}
		got = ps[0]
		return nil
	})
	return got
}

func assignedTasks(v *raftstore.View, svcID string) []*api.Task {
	var out []*api.Task
	for _, t := range v.TasksByService(svcID) {
		if t.DesiredState == api.TaskRunning && t.Status.State >= api.TaskAssigned && t.NodeID != "" {
			out = append(out, t)
		}
	}
	return out
}

func waitAssignedN(h *harness, svcID string, n int) []*api.Task {
	h.t.Helper()
	v := h.waitFor(fmt.Sprintf("%d tasks of %s assigned", n, svcID), func(v *raftstore.View) string {
		if got := len(assignedTasks(v, svcID)); got < n {
			return fmt.Sprintf("%d assigned", got)
		}
		return ""
	})
	return assignedTasks(v, svcID)
}

// TestTaskChangeReconcilesOnlyItsService: an agent's report about one
// task of alpha makes passes that reconcile alpha alone, not beta.
func TestTaskChangeReconcilesOnlyItsService(t *testing.T) {
	h, log := newScopeHarness(t, nil)
	h.addNode("n1", nil)
	alpha := h.createService(replicated("alpha", 2))
	beta := h.createService(replicated("beta", 2))
	h.startOrchestrator()
	tasks := waitAssignedN(h, alpha.ID, 2)
	waitAssignedN(h, beta.ID, 2)
	settle(t, h, log)
	if first := log.since(0)[0]; !first.all {
		t.Errorf("first pass: reconciled %v, want every service", first.services)
	}

	idx := h.state.Read().Index() + 1
	h.report(tasks[0], api.TaskRunning, 0)
	waitPass(t, log, idx)
	settle(t, h, log)
	for _, p := range log.since(idx) {
		if p.all || !slices.Equal(p.services, []string{alpha.ID}) {
			t.Errorf("pass over index %d reconciled %v (all: %v), want only %s", p.index, p.services, p.all, alpha.ID)
		}
	}
}

// TestMissedEventRepairedByFullPass: the watch loses the report of
// alpha's failed task, so no pass replaces it, until the periodic full
// pass does.
func TestMissedEventRepairedByFullPass(t *testing.T) {
	var losing atomic.Bool
	var alphaID atomic.Value
	alphaID.Store("")
	h, log := newScopeHarness(t, func(e raftstore.Event) bool {
		return losing.Load() && e.Task != nil && e.Task.ServiceID == alphaID.Load().(string)
	})
	h.addNode("n1", nil)
	spec := replicated("alpha", 1)
	spec.RestartPolicy.Delay = 0
	alpha := h.createService(spec)
	alphaID.Store(alpha.ID)
	h.startOrchestrator()
	task := waitAssignedN(h, alpha.ID, 1)[0]
	settle(t, h, log)

	losing.Store(true)
	h.report(task, api.TaskFailed, 1)
	// A pass over a later change (the barrier's service) does not reach
	// alpha: the failed task is still not replaced.
	h.barrier()
	settle(t, h, log)
	if n := len(h.state.Read().TasksByService(alpha.ID)); n != 1 {
		t.Fatalf("alpha has %d tasks before the full pass; want the failed one only\n%s", n, dump(h.state.Read()))
	}

	idx := h.state.Read().Index()
	h.clock.Advance(DefaultFullEvery)
	h.waitFor("alpha's replacement", func(v *raftstore.View) string {
		if n := len(v.TasksByService(alpha.ID)); n < 2 {
			return fmt.Sprintf("%d tasks", n)
		}
		return ""
	})
	if !slices.ContainsFunc(log.since(idx), func(p passRecord) bool { return p.all }) {
		t.Errorf("no full pass after %s: %v", DefaultFullEvery, log.since(idx))
	}
}

// TestNodeDownReconcilesEveryGlobalService: a node going down reaches the
// services of its tasks and every global service, even one with no task
// there, but not a replicated service elsewhere.
func TestNodeDownReconcilesEveryGlobalService(t *testing.T) {
	h, log := newScopeHarness(t, nil)
	h.addNode("n1", map[string]string{"zone": "a"})
	h.addNode("n2", map[string]string{"zone": "b"})
	everywhere := replicated("everywhere", 0)
	everywhere.Mode = api.ModeGlobal
	onlyA := everywhere
	onlyA.Name = "only-a"
	onlyA.Placement.Constraints = []string{"node.labels.zone==a"}
	repA := replicated("rep-a", 1)
	repA.Placement.Constraints = []string{"node.labels.zone==a"}
	g1 := h.createService(everywhere)
	g2 := h.createService(onlyA)
	r := h.createService(repA)
	h.startOrchestrator()
	waitAssignedN(h, g1.ID, 2)
	waitAssignedN(h, g2.ID, 1)
	waitAssignedN(h, r.ID, 1)
	settle(t, h, log)

	idx := h.state.Read().Index() + 1
	h.setNodeStatus("n2", api.NodeDown)
	p := waitPass(t, log, idx)
	if p.all {
		t.Fatalf("pass after n2 went down reconciled every service; want a narrowed pass")
	}
	for _, id := range []string{g1.ID, g2.ID} {
		if !slices.Contains(p.services, id) {
			t.Errorf("pass after n2 went down reconciled %v; want global service %s among them", p.services, id)
		}
	}
	if slices.Contains(p.services, r.ID) {
		t.Errorf("pass after n2 went down reconciled %v; want not %s (no task on n2)", p.services, r.ID)
	}
}
