package orchestrator

import (
	"fmt"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// orderStartFirst starts a replacement before its old task stops; the
// default (stop-first) stops the old task first.
const orderStartFirst = api.OrderStartFirst

// rollout replaces the tasks that run an outdated spec, group by group in
// slot (or node id) order, Parallelism at a time (0: all at once), under
// the state machine of the service's UpdateStatus (update_status.go). A
// replacement is in flight until it has been up (api.TaskUp) for the
// longer of Delay and Monitor.
//
// Everything is read from the store: the groups still on an old spec are
// the work left, the current-spec tasks not yet settled are the work in
// flight, the failures are the current-spec tasks that ended or stayed
// down within their monitor window, and where the rollout stands is the
// committed UpdateStatus — so a new leader resumes a rollout where the old
// one left it. eligible (nil: all) limits which groups may be replaced now.
func (p *pass) rollout(svc *api.Service, groups []*group, eligible func(*group) bool) {
	r := p.survey(svc, groups, eligible)
	st := p.rolloutStatus(svc, r)
	if st == nil {
		return
	}
	cfg := svc.Spec.RolloutConfig(st)
	if st.State.Halted() && st.State != api.UpdateAwaitingPromotion || st.State.Done() {
		return
	}
	if p.failureAction(svc, st, cfg, r) {
		return
	}
	if st.State.Canary() {
		p.canaries(svc, st, cfg, r)
		return
	}
	budget := api.UpdateBudget(cfg.Parallelism, len(r.todo), r.inflight)
	for i := 0; i < budget; i++ {
		p.replaceOutdated(svc, r.todo[i], cfg.Order)
	}
	if len(r.todo) == 0 {
		p.maybeComplete(svc, st, cfg, r)
	}
}

// survey is what a rollout pass knows of the service's groups.
type survey struct {
	groups []*group
	// todo: groups whose task runs an outdated spec (and may be replaced
	// now); outdated counts them all, eligible or not.
	todo     []*group
	outdated int
	// inflight: groups whose current-spec task is not up for the delay.
	inflight int
	// current: the primary task of each group that runs the current spec
	// (at the rollout's version or later: see since).
	current []*api.Task
	// since is the first version of the rollout: the current spec's
	// version, or that of a rollout a change of replicas or policies
	// alone carried on (api.UpdateStatus.Since).
	since uint64
}

func (p *pass) survey(svc *api.Service, groups []*group, eligible func(*group) bool) survey {
	cfg := svc.Spec.RolloutConfig(svc.UpdateStatus)
	// A batch is done once its tasks have been up for the delay and the
	// monitor window: a failure the monitor finds stops the rollout before
	// the next batch replaces more healthy tasks.
	delay := max(cfg.Delay.Std(), cfg.Monitor.Std())
	r := survey{groups: groups, since: svc.SpecVersion}
	if st := svc.UpdateStatus; st != nil && st.SpecVersion <= svc.SpecVersion {
		r.since = min(r.since, st.Since())
	}
	for _, g := range groups {
		cur := p.primary(svc, g)
		switch {
		case cur == nil:
		case p.dirtySpec(svc, cur):
			r.outdated++
			if eligible == nil || eligible(g) {
				r.todo = append(r.todo, g)
			}
		case cur.SpecVersion >= r.since:
			r.current = append(r.current, cur)
			if !p.settled(svc, cur, delay) {
				r.inflight++
			}
		}
	}
	return r
}

// primary is the task that stands for group g: its keeper among live
// tasks, else its newest ended one.
func (p *pass) primary(svc *api.Service, g *group) *api.Task {
	switch {
	case len(g.live) > 0:
		return p.keeper(svc, g.live)
	case len(g.dead) > 0:
		return g.dead[len(g.dead)-1]
	}
	return nil
}

// settled reports whether an updated task no longer counts as in flight:
// it has been up for delay, or it has ended (the restart policy deals with
// it, and the failure count with the rollout).
func (p *pass) settled(svc *api.Service, t *api.Task, delay time.Duration) bool {
	if t.Status.State.Terminal() {
		return true
	}
	ok, next := api.TaskUpFor(t, &svc.Spec, delay, p.now)
	p.wakeAt(next)
	return ok
}

// replaceOutdated starts the update of one group. Stop-first shuts the old
// task down in the same entry that creates the new one; the scheduler holds
// the new one until the old has stopped. Start-first only adds the new one:
// settleLive stops the old once the new is up.
func (p *pass) replaceOutdated(svc *api.Service, g *group, order string) {
	if order != orderStartFirst {
		for _, t := range g.wanted() {
			p.shutdown(g, t, fmt.Sprintf("updating to spec version %d", svc.SpecVersion))
		}
	}
	// A new version that keeps failing is retried after the restart
	// backoff (failures of older versions do not delay an update).
	p.create(svc, g, p.retryAt(svc, consecutiveFailures(g, svc.SpecVersion)))
}

// canaries runs the canary phase: the first Canary outdated groups get a
// task of the new spec beside their old one (which keeps running); once
// every canary has been up for the monitor window the rollout promotes
// itself (AutoPromote) or waits for `service promote`.
func (p *pass) canaries(svc *api.Service, st *api.UpdateStatus, cfg api.UpdateConfig, r survey) {
	want := min(int(cfg.Canary), len(r.groups))
	have := len(r.current)
	for _, g := range r.todo {
		if have >= want {
			break
		}
		p.create(svc, g, p.retryAt(svc, consecutiveFailures(g, svc.SpecVersion)))
		have++
	}
	if have < want || !p.allUpFor(svc, r.current, monitorOf(cfg)) || len(r.current) < want {
		return
	}
	next := *st
	if cfg.AutoPromote {
		next.State = api.UpdateUpdating
		next.Message = fmt.Sprintf("%d canaries up for %s: promoted automatically", want, monitorOf(cfg))
	} else {
		next.State = api.UpdateAwaitingPromotion
		next.Message = fmt.Sprintf("%d canaries up for %s: awaiting promotion (shoalctl service promote %s)",
			want, monitorOf(cfg), svc.Spec.Name)
	}
	p.setStatus(svc, next)
}

// keepsCanaryBeside reports whether settleLive must leave old task t
// running beside keep: during the canary phase the old task of a canary's
// slot runs on until the canaries are promoted.
func (p *pass) keepsCanaryBeside(svc *api.Service, keep, t *api.Task) bool {
	st := svc.UpdateStatus
	return st != nil && st.SpecVersion == svc.SpecVersion && st.State.Canary() &&
		keep.SpecVersion >= st.Since() && !p.dirtySpec(svc, keep) && p.dirtySpec(svc, t)
}

// allUpFor reports whether every task of ts has been up for d (and asks
// for a pass when the next one will be).
func (p *pass) allUpFor(svc *api.Service, ts []*api.Task, d time.Duration) bool {
	all := true
	for _, t := range ts {
		ok, next := api.TaskUpFor(t, &svc.Spec, d, p.now)
		p.wakeAt(next)
		all = all && ok
	}
	return all
}
