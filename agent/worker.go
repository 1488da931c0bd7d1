package agent

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// statusUpdate is one task status to report to the leader.
type statusUpdate struct {
	TaskID string
	Status api.TaskStatus
}

// worker owns the task runners of an agent: it applies assignment changes
// to them and collects the statuses they report.
type worker struct {
	rt    Runtime
	dp    DataPlane
	log   *slog.Logger
	now   func() time.Time
	store *taskStore
	// metrics receives the container start times (nil: not kept).
	metrics *Metrics
	// vault holds the secrets, configs and registry credentials of the
	// assigned tasks, in memory only.
	vault *vault

	mu      sync.Mutex
	ctx     context.Context
	runners map[string]*runner
	// adopt is the runtime's listing at start, kept until the first full
	// assignment set decides which of those containers are still wanted.
	adopt     map[string]Container
	confirmed bool
	wg        sync.WaitGroup

	outMu   sync.Mutex
	outbox  map[string]api.TaskStatus
	outKick chan struct{}
}

func newWorker(rt Runtime, dp DataPlane, store *taskStore, log *slog.Logger) *worker {
	return &worker{
		rt: rt, dp: dp, log: log, now: time.Now, store: store, vault: newVault(),
		runners: make(map[string]*runner),
		outbox:  make(map[string]api.TaskStatus), outKick: make(chan struct{}, 1),
	}
}

// start resumes the tasks of the agent's records, adopting the containers
// the runtime still has. They are watched, but not moved on, until a full
// assignment set confirms them.
func (w *worker) start(ctx context.Context, containers []Container) {
	byID := make(map[string]Container, len(containers))
	for _, c := range containers {
		byID[c.TaskID] = c
	}
	w.mu.Lock()
	w.ctx = ctx
	w.adopt = byID
	var started []*runner
	for _, rec := range w.store.list() {
		r := newRunner(w, rec.Task, rec.Status)
		r.f.held = true
		w.runners[r.id] = r
		started = append(started, r)
	}
	w.mu.Unlock()
	w.pruneNetworks(started, byID)
	for _, r := range started {
		if c, ok := byID[r.id]; ok {
			r.adopt(&c)
			if c.Running {
				w.readopt(ctx, r.task)
			}
		} else {
			r.adopt(nil)
		}
		w.launch(r)
	}
}

func (w *worker) launch(r *runner) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		r.run(w.ctx)
	}()
}

// wait returns once every runner has stopped (after the agent's ctx ended).
func (w *worker) wait() { w.wg.Wait() }

// apply hands one assignment change to the runners.
func (w *worker) apply(ch change) {
	w.mu.Lock()
	p := w.plan(ch)
	w.mu.Unlock()
	byID := make(map[string]*api.Task, len(ch.upsert))
	for _, t := range ch.upsert {
		byID[t.ID] = t
	}
	for _, r := range p.updates {
		r.update(byID[r.id])
		if ch.full {
			r.confirm()
		}
	}
	for _, r := range p.removes {
		r.remove()
	}
	for _, r := range p.fresh {
		w.prepare(r, p.adopt)
		w.launch(r)
	}
}

// applyPlan is what one change does to the runners.
type applyPlan struct {
	updates, removes, fresh []*runner
	// adopt is the runtime's listing at start when this is the first full
	// set, for the new runners to adopt their containers.
	adopt map[string]Container
}

// plan registers the new runners of a change and sorts the others into
// updates and removals. w.mu is held.
func (w *worker) plan(ch change) applyPlan {
	var p applyPlan
	inSet := make(map[string]bool, len(ch.upsert))
	for _, t := range ch.upsert {
		inSet[t.ID] = true
		if r := w.runners[t.ID]; r != nil {
			p.updates = append(p.updates, r)
			continue
		}
		r := newRunner(w, t, t.Status)
		w.runners[t.ID] = r
		p.fresh = append(p.fresh, r)
	}
	if ch.full {
		// A full set is the whole truth: whatever is not in it goes.
		for id, r := range w.runners {
			if !inSet[id] {
				p.removes = append(p.removes, r)
			}
		}
	} else {
		for _, id := range ch.remove {
			if r := w.runners[id]; r != nil && !inSet[id] {
				p.removes = append(p.removes, r)
			}
		}
	}
	if ch.full && !w.confirmed {
		w.confirmed = true
		p.adopt, w.adopt = w.adopt, nil
		for id, c := range p.adopt {
			if !inSet[id] && w.runners[id] == nil {
				// A container of ours with no record and no assignment.
				r := newRunner(w, &api.Task{ID: id, ServiceID: c.ServiceID}, api.TaskStatus{})
				r.f.exists, r.f.removed = true, true
				w.runners[id] = r
				p.fresh = append(p.fresh, r)
			}
		}
	}
	return p
}

// prepare sets what is known of a new runner's container: from the listing
// taken at start if there is one, else, for a task the leader believes
// already started, from a fresh listing.
func (w *worker) prepare(r *runner, adopt map[string]Container) {
	r.mu.Lock()
	status, removed := r.status, r.f.removed
	t := r.task
	r.mu.Unlock()
	if removed {
		return
	}
	st := status.State
	w.store.put(t, status)
	if adopt != nil {
		if c, ok := adopt[r.id]; ok {
			r.adopt(&c)
		} else {
			r.adopt(nil)
		}
		return
	}
	if st < api.TaskStarting || st.Terminal() {
		return
	}
	list, err := w.rt.List(w.ctx)
	if err != nil {
		w.log.Warn("listing containers failed", "task_id", r.id, "err", err)
		return
	}
	for _, c := range list {
		if c.TaskID == r.id {
			r.adopt(&c)
			return
		}
	}
	r.adopt(nil)
}

// report records a task's new status: kept on disk and queued for the
// leader (only the latest status of a task is sent).
func (w *worker) report(id string, t *api.Task, st api.TaskStatus) {
	w.store.put(t, st)
	w.outMu.Lock()
	w.outbox[id] = st
	w.outMu.Unlock()
	select {
	case w.outKick <- struct{}{}:
	default:
	}
}

// forget drops a torn-down task.
func (w *worker) forget(r *runner) {
	w.mu.Lock()
	if w.runners[r.id] == r {
		delete(w.runners, r.id)
	}
	w.mu.Unlock()
	w.store.delete(r.id)
	w.outMu.Lock()
	delete(w.outbox, r.id)
	w.outMu.Unlock()
}

// takeOutbox returns and clears the queued statuses, sorted by task ID.
func (w *worker) takeOutbox() []statusUpdate {
	w.outMu.Lock()
	box := w.outbox
	w.outbox = make(map[string]api.TaskStatus, len(box))
	w.outMu.Unlock()
	return sortedUpdates(box)
}

// statuses returns the current status of every task the agent acts on, to
// send again on a new session.
func (w *worker) statuses() []statusUpdate {
	rs := w.snapshot()
	m := make(map[string]api.TaskStatus, len(rs))
	for _, r := range rs {
		r.mu.Lock()
		st, removed := r.status, r.f.removed
		r.mu.Unlock()
		if !removed && st.State >= api.TaskAccepted {
			m[r.id] = st
		}
	}
	return sortedUpdates(m)
}

// taskIDs returns the tasks the agent has containers or records for.
func (w *worker) taskIDs() []string {
	w.mu.Lock()
	ids := make([]string, 0, len(w.runners)+len(w.adopt))
	for id := range w.runners {
		ids = append(ids, id)
	}
	for id := range w.adopt {
		if w.runners[id] == nil {
			ids = append(ids, id)
		}
	}
	w.mu.Unlock()
	sort.Strings(ids)
	return ids
}

func (w *worker) snapshot() []*runner {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*runner, 0, len(w.runners))
	for _, r := range w.runners {
		out = append(out, r)
	}
	return out
}

func sortedUpdates(m map[string]api.TaskStatus) []statusUpdate {
	out := make([]statusUpdate, 0, len(m))
	for id, st := range m {
		out = append(out, statusUpdate{TaskID: id, Status: st})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TaskID < out[j].TaskID })
	return out
}

// slot returns the slot of a task the agent knows, else 0.
func (w *worker) slot(id string) uint64 {
	w.mu.Lock()
	r := w.runners[id]
	w.mu.Unlock()
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.task.Slot
}
