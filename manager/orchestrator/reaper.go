package orchestrator

import "github.com/shoal-sched/shoal/api"

// historyPerGroup is how many ended tasks each slot (or node of a global
// service) keeps for `service ps`, as Swarm's task history limit of 5. A
// restart policy with more MaxAttempts keeps that many, so its count of
// attempts stays true.
const historyPerGroup = 5

// reap deletes tasks that are of no more use: those of removed services
// once they have ended (their agent confirmed the stop, or their node is
// down or gone: see orphanIfNodeLost) or never reached a node, and the
// ended tasks of each slot beyond its history limit.
func (p *pass) reap() {
	for _, t := range p.removed {
		e := p.plan.effective(t)
		if e.Status.State.Terminal() || e.Status.State < api.TaskAssigned {
			p.plan.remove(e)
		}
	}
	for _, svc := range p.services {
		if p.reconciled != nil && !p.reconciled[svc.ID] {
			continue // its groups did not change since its last pass
		}
		limit := historyLimit(svc)
		for _, g := range p.tasksOf(svc.ID).sorted() {
			keep := limit
			if g.key.node != "" && p.node(g.key.node) == nil {
				// A global service's history on a removed node is of
				// no more use.
				keep = 0
			}
			p.trim(g, keep)
		}
	}
}

// trim deletes the ended, stopped tasks of g beyond the newest limit. Tasks
// still wanted (an ended one the restart policy left in place) stay.
func (p *pass) trim(g *group, limit int) {
	kept := 0
	for i := len(g.past) - 1; i >= 0; i-- {
		t := g.past[i]
		if !t.Status.State.Terminal() {
			continue
		}
		if kept < limit {
			kept++
			continue
		}
		p.plan.remove(t)
	}
}
