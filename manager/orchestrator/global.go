package orchestrator

import (
	"time"

	"github.com/shoal-sched/shoal/api"
)

// reconcileGlobal keeps one wanted task on every eligible node: ready,
// active, and matching the service's constraints. A node that is paused,
// down or not yet known keeps what it has but gets nothing new; a draining
// node, one whose labels no longer match, or a removed one loses its task.
func (p *pass) reconcileGlobal(svc *api.Service, st *serviceTasks) {
	cons, err := api.ParseConstraints(svc.Spec.Placement.Constraints)
	if err != nil {
		// The control API validates specs; a bad one here changes nothing
		// rather than stopping every task of the service.
		p.log.Warn("global service has invalid constraints; its tasks are left as they are",
			"service", svc.Spec.Name, "err", err)
		return
	}
	eligible := make(map[groupKey]bool)
	var kept []*group
	for _, n := range p.allNodes() {
		g := st.group(groupKey{node: n.ID})
		switch {
		case n.Availability == api.AvailabilityDrain:
			p.stopAll(g, "node is drained")
			continue
		case !matchesAll(cons, n):
			p.stopAll(g, "node no longer matches the service's constraints")
			continue
		}
		kept = append(kept, g)
		if n.Status != api.NodeReady || n.Availability != api.AvailabilityActive {
			continue
		}
		eligible[g.key] = true
		p.settleDead(svc, g)
		if !g.occupied() {
			p.create(svc, g, time.Time{})
		}
	}
	for _, g := range st.sorted() {
		if p.node(g.key.node) == nil {
			p.stopAll(g, "node was removed")
		}
	}
	for _, g := range kept {
		p.settleLive(svc, g)
	}
	p.rollout(svc, kept, func(g *group) bool { return eligible[g.key] })
}

func matchesAll(cons []api.Constraint, n *api.Node) bool {
	for _, c := range cons {
		if !c.Match(n) {
			return false
		}
	}
	return true
}
