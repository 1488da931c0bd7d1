package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// defaultStopGrace is used when a spec sets no stop grace period (as Docker).
const defaultStopGrace = 10 * time.Second

// step is the one thing a task runner does next.
type step int

const (
	stepWait     step = iota // nothing to do until something changes
	stepAccept               // assigned → accepted
	stepPrepare              // accepted → preparing
	stepPull                 // preparing: pull the image → starting | rejected
	stepStart                // starting: create and start → running | rejected | failed
	stepExited               // running and the container exited → complete | failed
	stepWatch                // running: watch the container for its exit
	stepShutdown             // desired shutdown: stop, remove → shutdown
	stepCleanup              // stopped and no longer wanted: remove the container
	stepTeardown             // no longer assigned: stop, remove, forget
	stepSick                 // running and its health check said unhealthy: fail, stop
)

// facts is what the runner knows of its container.
type facts struct {
	removed  bool // no longer assigned to this node
	exists   bool // a container was created (or adopted)
	running  bool // it was started and has not been seen to exit
	exited   *ExitStatus
	watching bool // a Wait is in flight
	cleaned  bool // the container of a stopped task was removed
	// held: known only from the agent's own records, not yet confirmed by
	// a full assignment set; such a task is watched but not moved on.
	held bool
	// unhealthy: the task's health check turned unhealthy.
	unhealthy bool
}

// decide returns the next step for a task that is desired in state desired
// and observed in state st. It only ever leads forward.
func decide(desired, st api.TaskState, f facts) step {
	s := decideStep(desired, st, f)
	if f.held && s != stepWatch && s != stepExited && s != stepTeardown {
		return stepWait
	}
	return s
}

func decideStep(desired, st api.TaskState, f facts) step {
	switch {
	case f.removed:
		return stepTeardown
	case desired > api.TaskRunning:
		if !st.Terminal() {
			return stepShutdown
		}
		if !f.cleaned {
			return stepCleanup
		}
		return stepWait
	case st.Terminal():
		return stepWait
	case st < api.TaskAccepted:
		return stepAccept
	case st == api.TaskAccepted:
		return stepPrepare
	case st == api.TaskPreparing:
		return stepPull
	case st == api.TaskStarting:
		return stepStart
	case f.exited != nil:
		return stepExited
	case f.unhealthy:
		return stepSick
	case !f.watching:
		return stepWatch
	}
	return stepWait
}

// runner drives one task through its states, one step at a time.
type runner struct {
	w   *worker
	id  string
	log *slog.Logger

	mu         sync.Mutex
	task       *api.Task      // the latest assignment: spec and desired state
	status     api.TaskStatus // observed here; only moves forward
	f          facts
	net        *ContainerNetwork // the task's wiring, once made
	cancelStep context.CancelFunc
	// probe is the task's health check (nil: none), known once probeKnown;
	// stopProbe cancels its probes (see health.go).
	probe      *probeCheck
	probeKnown bool
	stopProbe  context.CancelFunc
	wake       chan struct{}
	done       chan struct{}
}

func newRunner(w *worker, t *api.Task, st api.TaskStatus) *runner {
	return &runner{
		w: w, id: t.ID, task: t, status: st,
		log:  w.log.With("task_id", t.ID),
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

func (r *runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// update takes a new assignment of the task. A step in progress is cut
// short when the task is no longer wanted. The leader's copy of the status
// is what this agent reported before; when it is ahead of the local one
// (the agent's records lagged behind a crash), it is taken over, so that
// a step already done is not done again.
func (r *runner) update(t *api.Task) {
	r.mu.Lock()
	r.task = t
	if r.status.State.CanMoveTo(t.Status.State) && agentReported(t.Status.State) {
		r.status = t.Status
	}
	r.w.store.put(t, r.status)
	if t.DesiredState > api.TaskRunning {
		r.stopProbesLocked()
		if r.cancelStep != nil {
			r.cancelStep()
		}
	}
	r.mu.Unlock()
	r.poke()
}

// agentReported reports whether a task state is one an agent reports (the
// leader's own states, like orphaned, never reach an agent's set).
func agentReported(s api.TaskState) bool {
	return s >= api.TaskAccepted && s <= api.TaskRejected
}

// confirm releases a held task: a full assignment set included it.
func (r *runner) confirm() {
	r.mu.Lock()
	r.f.held = false
	r.mu.Unlock()
	r.poke()
}

// remove marks the task as no longer assigned.
func (r *runner) remove() {
	r.mu.Lock()
	r.f.removed = true
	r.stopProbesLocked()
	if r.cancelStep != nil {
		r.cancelStep()
	}
	r.mu.Unlock()
	r.poke()
}

// adopt sets what a runtime listing showed of the task's container (c is
// nil when there is none) before the runner starts.
func (r *runner) adopt(c *Container) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status.State
	switch {
	case c == nil:
		r.f.exists, r.f.running, r.f.exited = false, false, nil
		if st == api.TaskRunning {
			r.setLocked(api.TaskFailed, "container is gone: it was removed while the agent was away", nil)
		}
	case c.Exited:
		r.f.exists = true
		exit := c.Exit
		r.f.exited = &exit
		if !st.Terminal() && st < api.TaskRunning {
			r.setLocked(api.TaskRunning, "adopted an exited container", nil)
		}
	case c.Running:
		r.f.exists, r.f.running = true, true
		if st < api.TaskRunning {
			r.setLocked(api.TaskRunning, "adopted a running container", nil)
		}
	default:
		r.f.exists = true
	}
}

// setLocked moves the status forward (or not at all) and reports it.
func (r *runner) setLocked(state api.TaskState, msg string, err error) {
	if !r.status.State.CanMoveTo(state) {
		return
	}
	// Health stays with the task to its end, so that a stopped task still
	// shows what its check last said.
	st := api.TaskStatus{State: state, Message: msg, Timestamp: r.w.now(), Health: r.status.Health, HealthLog: r.status.HealthLog}
	if state == api.TaskRunning && r.probe != nil && st.Health == api.HealthNone {
		st.Health = api.HealthStarting
	}
	if state.Terminal() {
		r.stopProbesLocked()
	}
	if err != nil {
		st.Err = err.Error()
	}
	if r.f.exists {
		st.ContainerID = r.id
	}
	if r.f.exited != nil {
		st.ExitCode = r.f.exited.Code
	}
	r.status = st
	r.w.report(r.id, r.task, st)
}

func (r *runner) set(state api.TaskState, msg string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setLocked(state, msg, err)
}

// run executes steps until the task is forgotten or ctx ends. Containers
// are left as they are when ctx ends: a restarted agent adopts them.
func (r *runner) run(ctx context.Context) {
	defer close(r.done)
	for ctx.Err() == nil {
		r.mu.Lock()
		s := decide(r.task.DesiredState, r.status.State, r.f)
		t := r.task
		r.mu.Unlock()
		if s == stepTeardown {
			r.teardown(ctx, t)
			return
		}
		if s == stepWait {
			select {
			case <-ctx.Done():
			case <-r.wake:
			}
			continue
		}
		r.do(ctx, s, t)
	}
}

// do executes one step with a context that update or remove can cancel.
func (r *runner) do(ctx context.Context, s step, t *api.Task) {
	sctx, cancel := context.WithCancel(ctx)
	r.mu.Lock()
	r.cancelStep = cancel
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.cancelStep = nil
		r.mu.Unlock()
		cancel()
	}()
	switch s {
	case stepAccept:
		r.set(api.TaskAccepted, "accepted", nil)
	case stepPrepare:
		r.set(api.TaskPreparing, "pulling "+t.RunSpec().ImageRef(), nil)
	case stepPull:
		r.pull(sctx, t)
	case stepStart:
		r.start(sctx, t)
	case stepExited:
		r.exited()
	case stepWatch:
		r.watch(ctx)
	case stepShutdown:
		r.shutdown(sctx, t)
	case stepCleanup:
		r.cleanup(sctx, t)
	case stepSick:
		r.failUnhealthy(sctx, t)
	}
}

func (r *runner) pull(ctx context.Context, t *api.Task) {
	err := r.w.rt.Pull(ctx, t.RunSpec().ImageRef(), WithPullAuth(r.w.vault.auth(t.ServiceID)))
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return // cut short: the next step decides again
	default:
		r.set(api.TaskRejected, "pull failed", err)
		return
	}
	// The task's namespace is wired before its container exists.
	n, err := r.w.attach(ctx, t)
	switch {
	case err == nil:
		r.mu.Lock()
		r.net = &n
		r.mu.Unlock()
		r.set(api.TaskStarting, "starting container", nil)
	case ctx.Err() != nil:
	default:
		r.set(api.TaskRejected, "network setup failed", err)
	}
}

// network is the task's wiring, made again if this runner did not make it
// (the agent restarted between preparing and starting).
func (r *runner) network(ctx context.Context, t *api.Task) (ContainerNetwork, error) {
	r.mu.Lock()
	n := r.net
	r.mu.Unlock()
	if n != nil {
		return *n, nil
	}
	return r.w.attach(ctx, t)
}

func (r *runner) start(ctx context.Context, t *api.Task) {
	r.mu.Lock()
	exists, running := r.f.exists, r.f.running
	r.mu.Unlock()
	var began time.Time // zero: the container existed already
	if !exists {
		n, err := r.network(ctx, t)
		if err != nil {
			if ctx.Err() == nil {
				r.set(api.TaskRejected, "network setup failed", err)
			}
			return
		}
		files, err := r.w.vault.files(t)
		if err != nil {
			r.set(api.TaskRejected, "secrets missing", err)
			return
		}
		// The start time counts from the create: a pull and the network
		// setup have their own causes of delay.
		began = time.Now()
		if err := r.w.rt.Create(ctx, t, WithNetwork(n), WithSecrets(files)); err != nil {
			if ctx.Err() == nil {
				r.set(api.TaskRejected, "create failed", err)
			}
			return
		}
		r.mu.Lock()
		r.f.exists = true
		r.mu.Unlock()
	}
	if !running {
		if err := r.w.rt.Start(ctx, r.id); err != nil {
			if ctx.Err() == nil {
				r.set(api.TaskFailed, "start failed", err)
			}
			return
		}
	}
	if !began.IsZero() && !running {
		r.w.metrics.observeStart(time.Since(began))
	}
	check := r.checkFor(ctx, t)
	r.mu.Lock()
	r.f.running = true
	r.probe, r.probeKnown = check, true
	r.setLocked(api.TaskRunning, "started", nil)
	r.mu.Unlock()
}

// watch waits for the container's exit in the background, and runs its
// health check (for an adopted container, first finding which applies).
func (r *runner) watch(ctx context.Context) {
	r.mu.Lock()
	known, t := r.probeKnown, r.task
	r.mu.Unlock()
	var check *probeCheck
	if !known {
		check = r.checkFor(ctx, t)
	}
	r.mu.Lock()
	r.f.watching = true
	if !known {
		r.probe, r.probeKnown = check, true
	}
	r.startProbesLocked(ctx, r.w.now())
	r.mu.Unlock()
	go func() {
		exit, err := r.w.rt.Wait(ctx, r.id)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			exit = ExitStatus{Code: -1, At: r.w.now()}
			r.log.Warn("lost track of container", "err", err)
		}
		r.mu.Lock()
		r.f.exited = &exit
		r.f.running = false
		r.stopProbesLocked()
		if err != nil {
			r.setLocked(api.TaskFailed, "container is gone", err)
		}
		r.mu.Unlock()
		r.poke()
	}()
}

func (r *runner) exited() {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.f.exited
	switch {
	case e.OOMKilled:
		r.setLocked(api.TaskFailed, "out of memory: the container was killed", fmt.Errorf("exit code %d (OOM killed)", e.Code))
	case e.Code != 0:
		r.setLocked(api.TaskFailed, fmt.Sprintf("exited with code %d", e.Code), fmt.Errorf("task: non-zero exit (%d)", e.Code))
	default:
		r.setLocked(api.TaskComplete, "exited with code 0", nil)
	}
}

func stopGrace(t *api.Task) time.Duration {
	if g := t.RunSpec().StopGracePeriod.Std(); g > 0 {
		return g
	}
	return defaultStopGrace
}

// stopAndRemove stops the container (if any) within the spec's grace and
// removes it.
func (r *runner) stopAndRemove(ctx context.Context, t *api.Task) error {
	r.mu.Lock()
	exists := r.f.exists
	r.mu.Unlock()
	if exists {
		if err := r.w.rt.Stop(ctx, r.id, stopGrace(t)); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("stop task %s: %w", r.id, err)
		}
	}
	if err := r.w.rt.Remove(ctx, r.id); err != nil {
		return fmt.Errorf("remove task %s: %w", r.id, err)
	}
	if err := r.w.release(t); err != nil {
		return fmt.Errorf("release the network of task %s: %w", r.id, err)
	}
	r.mu.Lock()
	r.f.exists, r.f.running, r.f.cleaned = false, false, true
	r.net = nil
	r.mu.Unlock()
	return nil
}

func (r *runner) shutdown(ctx context.Context, t *api.Task) {
	if err := r.stopAndRemove(ctx, t); err != nil {
		if ctx.Err() == nil {
			r.log.Warn("shutdown failed, will retry", "err", err)
			r.backoff(ctx)
		}
		return
	}
	r.set(api.TaskShutdown, "shut down on request", nil)
}

func (r *runner) cleanup(ctx context.Context, t *api.Task) {
	err := r.w.rt.Remove(ctx, r.id)
	if err == nil {
		err = r.w.release(t)
	}
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("removing stopped container failed, will retry", "err", err)
			r.backoff(ctx)
		}
		return
	}
	r.mu.Lock()
	r.f.exists, r.f.cleaned = false, true
	r.mu.Unlock()
}

// teardown stops and removes the container of a task no longer assigned
// here, retrying (bounded by ctx) until the runtime agrees, then forgets it.
func (r *runner) teardown(ctx context.Context, t *api.Task) {
	for ctx.Err() == nil {
		err := r.stopAndRemove(ctx, t)
		if err == nil {
			r.w.forget(r)
			return
		}
		r.log.Warn("removing unassigned task failed, will retry", "err", err)
		r.backoff(ctx)
	}
}

// backoff paces retries of a failing runtime call.
func (r *runner) backoff(ctx context.Context) {
	t := time.NewTimer(500 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
