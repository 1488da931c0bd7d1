package orchestrator

import (
	"fmt"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// orderStartFirst starts a replacement before its old task stops; the
// default (stop-first) stops the old task first.
const orderStartFirst = "start-first"

// rollout replaces the tasks that run an outdated spec, group by group in
// slot (or node id) order, UpdateConfig.Parallelism at a time (0: all at
// once). A replacement is in flight until it has run for UpdateConfig.Delay.
//
// Everything is read from the store: the groups still on an old spec are
// the work left, and the current-spec tasks not yet settled are the work in
// flight, so a new leader resumes a rollout where the old one left it.
// eligible (nil: all) limits which groups may be replaced now.
func (p *pass) rollout(svc *api.Service, groups []*group, eligible func(*group) bool) {
	uc := svc.Spec.UpdateConfig
	var todo []*group
	inflight := 0
	for _, g := range groups {
		cur := p.primary(svc, g)
		switch {
		case cur == nil:
		case p.dirtySpec(svc, cur):
			if eligible == nil || eligible(g) {
				todo = append(todo, g)
			}
		case cur.SpecVersion == svc.SpecVersion && !p.settled(cur, uc.Delay.Std()):
			inflight++
		}
	}
	budget := updateBudget(uc.Parallelism, len(todo), inflight)
	for i := 0; i < budget; i++ {
		p.replaceOutdated(svc, todo[i], uc.Order)
	}
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
// it has run for delay, or it has ended (the restart policy deals with it).
func (p *pass) settled(t *api.Task, delay time.Duration) bool {
	switch {
	case t.Status.State.Terminal():
		return true
	case t.Status.State != api.TaskRunning:
		return false
	}
	until := t.Status.Timestamp.Add(delay)
	if p.now.Before(until) {
		p.wakeAt(until)
		return false
	}
	return true
}

// replaceOutdated starts the update of one group. Stop-first shuts the old
// task down in the same entry that creates the new one; the scheduler holds
// the new one until the old has stopped. Start-first only adds the new one:
// settleLive stops the old once the new runs.
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
