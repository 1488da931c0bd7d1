package orchestrator

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// reconcileReplicated keeps one wanted task in each of Replicas slots:
// restart decisions first, then the slot count, then duplicates and
// drained nodes, then the rolling update.
func (p *pass) reconcileReplicated(svc *api.Service, st *serviceTasks) {
	for _, g := range st.sorted() {
		if g.key.slot == 0 {
			// Left over from a mode change: not a slot of this service.
			p.stopAll(g, "not a slot of a replicated service")
			continue
		}
		p.settleDead(svc, g)
	}
	kept := p.scale(svc, st)
	for _, g := range kept {
		p.settleLive(svc, g)
	}
	p.rollout(svc, kept, nil)
}

// stopAll shuts down every wanted task of g.
func (p *pass) stopAll(g *group, msg string) {
	for _, t := range g.wanted() {
		p.shutdown(g, t, msg)
	}
}

// scale fills missing slots (the lowest free numbers, so a service created
// with N replicas has slots 1..N) or shuts down surplus ones, and returns
// the slots kept, by number.
func (p *pass) scale(svc *api.Service, st *serviceTasks) []*group {
	var occupied []*group
	taken := make(map[uint64]bool)
	for _, g := range st.sorted() {
		if g.key.slot > 0 && g.occupied() {
			occupied = append(occupied, g)
			taken[g.key.slot] = true
		}
	}
	want := p.replicas(svc)
	if len(occupied) > want {
		order := p.scaleDownOrder(occupied)
		for _, g := range order[:len(occupied)-want] {
			p.stopAll(g, fmt.Sprintf("scaled down to %d replicas", want))
		}
		kept := order[len(occupied)-want:]
		slices.SortFunc(kept, func(a, b *group) int { return cmp.Compare(a.key.slot, b.key.slot) })
		return kept
	}
	for slot := uint64(1); len(occupied) < want; slot++ {
		if taken[slot] {
			continue
		}
		g := st.group(groupKey{slot: slot})
		p.create(svc, g, time.Time{})
		occupied = append(occupied, g)
	}
	slices.SortFunc(occupied, func(a, b *group) int { return cmp.Compare(a.key.slot, b.key.slot) })
	return occupied
}

// scaleDownOrder sorts slots in the order they are given up: first those
// with no task on a node, then those on the nodes that run the most tasks
// of the service (each node's tasks counted 1, 2, 3… in slot order, the
// highest count first), the highest slot first among equals.
func (p *pass) scaleDownOrder(occupied []*group) []*group {
	copyIdx := make(map[groupKey]int)
	perNode := make(map[string]int)
	for _, g := range occupied { // in slot order
		if t := placedTask(g); t != nil {
			perNode[t.NodeID]++
			copyIdx[g.key] = perNode[t.NodeID]
		}
	}
	order := slices.Clone(occupied)
	slices.SortStableFunc(order, func(a, b *group) int {
		ia, oka := copyIdx[a.key]
		ib, okb := copyIdx[b.key]
		return cmp.Or(
			cmpBool(oka, okb),                   // unplaced first
			cmp.Compare(ib, ia),                 // busiest node first
			cmp.Compare(b.key.slot, a.key.slot), // highest slot first
		)
	})
	return order
}

// placedTask is the newest live task of g that is on a node, or nil.
func placedTask(g *group) *api.Task {
	for i := len(g.live) - 1; i >= 0; i-- {
		if g.live[i].NodeID != "" {
			return g.live[i]
		}
	}
	return nil
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// settleLive handles a group with live tasks: when they all sit on draining
// nodes it starts a replacement elsewhere; when there are several, the best
// one is kept and the others are shut down once it runs (at once if they
// do not run either).
func (p *pass) settleLive(svc *api.Service, g *group) {
	if len(g.live) == 0 {
		return
	}
	if !slices.ContainsFunc(g.live, p.staysPut) {
		p.create(svc, g, p.retryAt(svc, consecutiveFailures(g, 0)))
	}
	if len(g.live) < 2 {
		return
	}
	keep := p.keeper(svc, g.live)
	for _, t := range slices.Clone(g.live) {
		if t.ID == keep.ID {
			continue
		}
		if p.keepsCanaryBeside(svc, keep, t) {
			continue
		}
		if p.up(keep) || !p.up(t) {
			p.shutdown(g, t, fmt.Sprintf("replaced by task %s", keep.ID))
		}
	}
}

// staysPut reports whether t is not on a draining node.
func (p *pass) staysPut(t *api.Task) bool {
	n := p.node(t.NodeID)
	return n == nil || n.Availability != api.AvailabilityDrain
}

// keeper picks the task a group keeps: off draining nodes, at the current
// spec, furthest along, newest — in that order of importance.
func (p *pass) keeper(svc *api.Service, live []*api.Task) *api.Task {
	return slices.MaxFunc(live, func(a, b *api.Task) int {
		return cmp.Or(
			cmpBool(p.staysPut(a), p.staysPut(b)),
			cmpBool(!p.dirtySpec(svc, a), !p.dirtySpec(svc, b)),
			cmp.Compare(a.Status.State, b.Status.State),
			olderTask(a, b),
		)
	})
}
