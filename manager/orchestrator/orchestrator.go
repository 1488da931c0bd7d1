package orchestrator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

const (
	// retryDelay is how long the loop waits after a pass it could not
	// commit (no quorum, a timeout) before it tries again, unless the state
	// changes first.
	retryDelay = time.Second
	// minPassInterval spaces passes out: a pass over 10,000 tasks costs
	// about 15 ms of CPU, and a burst of agent reports should cost a few
	// passes, not one each. It is real time (CPU), not the Clock.
	minPassInterval = 10 * time.Millisecond
	// fullPassShare bounds the safety net's cost: the next full pass comes
	// no sooner than this many times the last one took, so that it costs
	// an idle leader at most 2 % of a core. At 100,000 tasks a full pass
	// takes more than half a second: every 30 s, it was most of what an
	// idle leader did.
	fullPassShare = 50
)

// barrier is what a Raft member offers to make its state fresh: it returns
// once everything committed before the call is applied. A new leader may
// not yet have applied its predecessor's last entries; a pass over that
// state would redo their work.
type barrier interface {
	VerifyLeader(ctx context.Context) error
}

// Options configures an Orchestrator.
type Options struct {
	Logger *slog.Logger
	// Clock defaults to the real clock.
	Clock Clock
	// Metrics receives the passes' figures (nil: none are kept).
	Metrics *Metrics
	// FullEvery is how often a pass reconciles every service, not only
	// those the store's events named (default DefaultFullEvery), or
	// fullPassShare times as long as the last full pass took when that is
	// longer. It is the Clock's time.
	FullEvery time.Duration
}

// Orchestrator is the leader's reconciliation loop.
type Orchestrator struct {
	state   *raftstore.State
	applier raftstore.Applier
	log     *slog.Logger
	clock   Clock
	metrics *Metrics
	// refused maps a task the last commits refused to assign to the index
	// of that commit: the task is not offered again until the state moves
	// past it (so a disagreement with the FSM cannot spin the loop).
	refused map[string]uint64
	// warned remembers services already reported as over max-replicas.
	warned map[string]uint64
	// timers maps a service to the time its rules asked for a pass at
	// (a rollout's delay or monitor window): it is reconciled then.
	timers    map[string]time.Time
	fullEvery time.Duration
	// maxReplicas is the cluster's limit at the last pass: a change
	// reaches every service, and it comes with no event.
	maxReplicas uint64
	// loads is what the tasks on each node hold, carried from pass to
	// pass (loads.go).
	loads nodeLoads
	// drop and onPass are test hooks: drop loses the events it says yes
	// to; onPass sees the services each pass reconciled (all: every one).
	drop   func(raftstore.Event) bool
	onPass func(index uint64, services []string, all bool)
}

// New returns an orchestrator over state that commits through applier (on
// a cluster, the local Raft member).
func New(state *raftstore.State, applier raftstore.Applier, opts Options) *Orchestrator {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	clock := opts.Clock
	if clock == nil {
		clock = realClock{}
	}
	return &Orchestrator{
		state:     state,
		applier:   applier,
		log:       log.With("component", "orchestrator"),
		clock:     clock,
		metrics:   opts.Metrics,
		refused:   make(map[string]uint64),
		warned:    make(map[string]uint64),
		timers:    make(map[string]time.Time),
		fullEvery: cmp.Or(opts.FullEvery, DefaultFullEvery),
	}
}

// Run reconciles until ctx ends (nil) or this manager stops being the
// leader (an error wrapping raftstore.ErrNotLeader). Its first pass
// reconciles every service; later ones only the services the store's
// events named since (changes that arrive during a pass are folded into
// the next one), those whose restart or update delay is due, and every
// service again each FullEvery, when the watch fell behind its history,
// or after a pass that failed to commit.
//
// Run is called once per term: its first pass waits for the barrier, so
// that a manager that leads again does not act on a state that lacks
// what the leaders in between committed.
func (o *Orchestrator) Run(ctx context.Context) error {
	o.log.Info("orchestrator started")
	defer o.log.Info("orchestrator stopped")
	w := newWatcher(o.state)
	w.drop = o.drop
	defer w.cancel()
	sc := newScope(true)
	var last time.Time
	nextFull := o.clock.Now().Add(o.fullEvery)
	synced := false
	// After a pass, the loop rests as long as its rules took to work out
	// (its commit aside), so that a stream of reports on a big service
	// (each pass reads all its tasks) costs at most half a core and leaves
	// the rest to the sessions and Raft. A pass over a small cluster takes
	// a millisecond or two: its reactions wait no longer.
	var rest time.Duration
	var ended time.Time
	for {
		if !pause(ctx, max(minPassInterval-time.Since(last), rest-time.Since(ended))) {
			return nil
		}
		last = time.Now()
		w.drain(sc)
		if now := o.clock.Now(); !now.Before(nextFull) || sc.all {
			sc.all, nextFull = true, now.Add(o.fullEvery)
		}
		var wake time.Time
		var err error
		if !synced {
			err = o.sync(ctx)
			synced = err == nil
		}
		if err == nil {
			start := time.Now()
			var prepared time.Duration
			wake, prepared, err = o.passOver(ctx, sc)
			ended = time.Now()
			rest = prepared
			o.metrics.observePass(ended.Sub(start), err)
			if sc.all {
				nextFull = later(nextFull, o.clock.Now().Add(fullPassShare*ended.Sub(start)))
			}
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, raftstore.ErrNotLeader):
			return fmt.Errorf("orchestrator: %w", err)
		case err != nil:
			o.log.Warn("pass not committed; retrying", "err", err, "retry_in", retryDelay.String())
			wake = o.clock.Now().Add(retryDelay)
			// The pass may still commit: the next one must see it, or it
			// would make the same tasks again.
			synced = synced && !errors.Is(err, raftstore.ErrCommitUncertain)
			// Part of it may have committed: the next pass looks at all.
			sc = newScope(true)
		default:
			sc = newScope(false)
		}
		if !o.wait(ctx, w, sc, wake, nextFull) {
			return nil
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// sync waits until the state holds everything committed before this
// manager became the leader (a no-op over an applier without a barrier).
func (o *Orchestrator) sync(ctx context.Context) error {
	b, ok := o.applier.(barrier)
	if !ok {
		return nil
	}
	if err := b.VerifyLeader(ctx); err != nil {
		return fmt.Errorf("wait for the log to be applied: %w", err)
	}
	return nil
}

// pause waits d of real time (false if ctx ends first).
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// wait blocks until the store changes (the change folded into sc), wake
// or the next full pass comes, or ctx ends (false).
func (o *Orchestrator) wait(ctx context.Context, w *watcher, sc *scope, wake, nextFull time.Time) bool {
	if wake.IsZero() || nextFull.Before(wake) {
		wake = nextFull
	}
	t := o.clock.NewTimer(wake.Sub(o.clock.Now()))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case b, ok := <-w.w.Events:
		w.fold(sc, b, ok)
	case <-t.C():
	}
	return true
}

// pass runs one reconciliation of every service and commits it.
func (o *Orchestrator) pass(ctx context.Context) (time.Time, error) {
	wake, _, err := o.passOver(ctx, nil)
	return wake, err
}

// passOver runs one reconciliation of the services in sc (nil: all) and
// commits it. It returns when the next pass is due even if the state does
// not change (zero: no such time), and how long working the pass out took
// (its commit aside).
func (o *Orchestrator) passOver(ctx context.Context, sc *scope) (time.Time, time.Duration, error) {
	start := time.Now()
	p, err := o.prepare(sc)
	prepared := time.Since(start)
	if err != nil {
		return time.Time{}, prepared, err
	}
	// Entries go one after the other, in order: one that fails leaves the
	// rest to the next pass, which starts from what did commit.
	if !p.plan.empty() {
		for _, e := range p.plan.entries(p.unitOf) {
			if err := o.commit(ctx, e); err != nil {
				return time.Time{}, prepared, fmt.Errorf("commit pass over index %d: %w", p.index, err)
			}
		}
	}
	if err := o.commitRollouts(ctx, p); err != nil {
		return time.Time{}, prepared, fmt.Errorf("commit rollout status over index %d: %w", p.index, err)
	}
	return o.nextWake(p), prepared, nil
}

// prepare reads the state and works out one pass over the services in sc
// (nil: all) without committing it. A narrowed pass reads the tasks of the
// services it reconciles and of those it schedules; a full one reads all.
func (o *Orchestrator) prepare(sc *scope) (*pass, error) {
	p := openPass(o.state.Read(), o.clock.Now(), o.log)
	p.warned = o.warned
	if p.maxReplicas != o.maxReplicas {
		sc, o.maxReplicas = nil, p.maxReplicas
	}
	due := make(map[string]bool)
	for id, at := range o.timers {
		if !at.After(p.now) {
			due[id] = true
		}
	}
	if sc == nil || sc.all {
		sc = nil
		p.loadAll()
	} else {
		p.widen(sc)
		p.loadServices(p.needs(sc, due))
	}
	if err := o.loads.advance(o.state, p); err != nil {
		return nil, fmt.Errorf("node loads at index %d: %w", p.index, err)
	}
	o.reconcile(p, sc, due)
	p.reap()
	p.schedule(o.refused, o.loads.planned(p))
	o.metrics.setPending(p.pending)
	for id, at := range o.refused {
		if p.index > at {
			delete(o.refused, id)
		}
	}
	return p, nil
}

// reconcile runs the per-service rules over the services in sc (nil: all)
// and those whose timer is due, and keeps the timers they ask for.
func (o *Orchestrator) reconcile(p *pass, sc *scope, due map[string]bool) {
	all := sc == nil || sc.all
	if !all {
		p.reconciled = make(map[string]bool)
	}
	var visited []string
	for _, svc := range p.services {
		if !all && !p.inScope(sc, due, svc) {
			continue
		}
		if p.reconciled != nil {
			p.reconciled[svc.ID] = true
		}
		visited = append(visited, svc.ID)
		delete(o.timers, svc.ID)
		p.cur = svc.ID
		if svc.Spec.Mode == api.ModeGlobal {
			p.reconcileGlobal(svc, p.tasksOf(svc.ID))
		} else {
			p.reconcileReplicated(svc, p.tasksOf(svc.ID))
		}
		p.cur = ""
	}
	for id := range o.timers {
		if p.service(id) == nil {
			delete(o.timers, id)
		}
	}
	for id, at := range p.wakes {
		o.timers[id] = at
	}
	if o.onPass != nil {
		o.onPass(p.index, visited, all)
	}
}

// nextWake is the earliest of the pass's own wake (the scheduling step's,
// which runs whole in every pass) and the services' timers.
func (o *Orchestrator) nextWake(p *pass) time.Time {
	wake := p.wake
	for _, at := range o.timers {
		if wake.IsZero() || at.Before(wake) {
			wake = at
		}
	}
	return wake
}

// commit writes one entry of a pass. An entry that the store refuses as too
// large (its size estimate fell short: long status messages, say) is cut
// in two and each half committed, down to single units.
func (o *Orchestrator) commit(ctx context.Context, e entry) error {
	resp, err := o.applier.Apply(ctx, e.command())
	if errors.Is(err, raftstore.ErrEntryTooLarge) && len(e.units) > 1 {
		o.log.Warn("pass entry over the size limit; splitting it", "units", len(e.units), "err", err)
		first, second := e.halves()
		if err := o.commit(ctx, first); err != nil {
			return err
		}
		return o.commit(ctx, second)
	}
	if err != nil {
		return err
	}
	o.record(resp, e)
	return nil
}

// record notes what the commit refused. Refusals are expected (the state
// moved between read and commit) and the next pass retries them.
func (o *Orchestrator) record(resp raftstore.Response, e entry) {
	results := []raftstore.BatchResult{{Value: resp.Value}}
	if b, ok := resp.Value.([]raftstore.BatchResult); ok {
		results = b
	}
	var refusedAssign, refusedUpdate int
	for _, r := range results {
		switch v := r.Value.(type) {
		case raftstore.AssignResult:
			for _, ref := range v.Refused {
				o.refused[ref.TaskID] = resp.Index
			}
			refusedAssign += len(v.Refused)
			o.metrics.observeAssigned(e, v.Refused, o.clock.Now())
		case raftstore.WriteTasksResult:
			refusedUpdate += len(v.Refused)
		}
		if r.Err != nil {
			o.log.Warn("part of a pass was rejected; the next pass retries", "index", resp.Index, "err", r.Err)
		}
	}
	creates, updates, deletes, assigns := e.counts()
	o.log.Debug("pass entry committed", "index", resp.Index,
		"created", creates, "updated", updates, "deleted", deletes,
		"assigned", assigns-refusedAssign, "refused_assignments", refusedAssign,
		"refused_updates", refusedUpdate)
}
