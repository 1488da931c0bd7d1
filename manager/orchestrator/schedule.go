package orchestrator

import (
	"fmt"
	"strings"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/scheduler"
)

// schedule places the tasks that wait for a node, on the nodes as this pass
// leaves them (tasks ended or created in this pass included). Decisions go
// into the plan: AssignTasks re-checks each against the state it commits
// on and refuses what no longer fits, leaving the task pending with the
// refusal as its reason; refused tasks are retried once the state has
// moved past the refusal (refused maps task id → the index of the entry
// that refused it).
//
// Every pass, narrowed or not, offers every waiting task (the store's
// awaiting_node index, and those the pass created): room freed anywhere is
// used at once. What the other tasks hold comes from loads, the nodes'
// sums as the plan leaves them; only the tasks of the services being
// placed are listed, for spread and max per node.
func (p *pass) schedule(refused map[string]uint64, loads func(node string) *scheduler.Load) {
	p.pending = make(map[string]int)
	var candidates []*api.Task
	placing := make(map[string]bool)
	visit := func(t *api.Task) {
		if p.plan.deleted[t.ID] {
			return
		}
		svc := p.service(t.ServiceID)
		if svc == nil {
			return
		}
		p.tasksOf(svc.ID) // files (and may orphan) the task first
		t = p.plan.effective(t)
		if !t.AwaitsNode() {
			return
		}
		if at, ok := refused[t.ID]; ok && p.index <= at {
			p.pending[pendingRefused]++
			return
		}
		if class, why := p.holdBack(svc, t); why != "" {
			p.pending[class]++
			p.plan.setPending(t, why)
			return
		}
		candidates = append(candidates, t)
		placing[svc.ID] = true
	}
	for _, t := range p.awaiting {
		visit(t)
	}
	for _, t := range p.plan.creates {
		visit(t)
	}
	if len(candidates) == 0 {
		return
	}
	onNode := make(map[string][]*api.Task)
	for _, svc := range p.services {
		if !placing[svc.ID] {
			continue
		}
		for _, g := range p.tasksOf(svc.ID).sorted() {
			for _, ts := range [][]*api.Task{g.live, g.dead, g.past} {
				for _, t := range ts {
					if _, ok := boundHolding(t, p.specOf(t)); ok && !p.plan.deleted[t.ID] {
						onNode[t.NodeID] = append(onNode[t.NodeID], t)
					}
				}
			}
		}
	}
	nodes := p.allNodes()
	infos := make([]scheduler.NodeInfo, len(nodes))
	for i, n := range nodes {
		infos[i] = scheduler.NodeInfo{Node: n, Tasks: onNode[n.ID], Load: loads(n.ID)}
	}
	byID := make(map[string]*api.Task, len(candidates))
	for _, t := range candidates {
		byID[t.ID] = t
	}
	res := scheduler.Schedule(infos, candidates, p.specOf)
	for _, d := range res.Decisions {
		p.plan.assign(byID[d.TaskID], d.NodeID)
	}
	for _, u := range res.Unplaced {
		p.pending[pendingNoNode]++
		p.plan.setPending(byID[u.TaskID], u.Reason)
	}
}

// holdBack says why a task that waits for a node may not be placed yet
// ("" if it may), and the class of that reason (for the pending gauge):
// its restart delay, the stop of the task it replaces (stop-first), its
// addresses, or its service's depends_on.
func (p *pass) holdBack(svc *api.Service, t *api.Task) (class, why string) {
	if t.NotBefore.After(p.now) {
		p.wakeAt(t.NotBefore)
		return pendingRestartDelay, restartReason(t)
	}
	if g := p.tasksOf(svc.ID).groups[keyOf(svc, t)]; g != nil {
		for _, o := range g.past {
			if o.Status.State.Active() {
				return pendingStopFirst, fmt.Sprintf("waiting for task %s to stop before its replacement starts", o.ID)
			}
		}
	}
	if why := p.networkWait(t); why != "" {
		return pendingNetwork, why
	}
	return pendingDependsOn, p.dependencyWait(svc)
}

// networkWait holds back a task whose addresses the allocator has not
// committed yet: an agent could not wire it. The allocator's own reason
// (e.g. no IP left) is kept while it waits.
func (p *pass) networkWait(t *api.Task) string {
	if len(t.Networks) > 0 {
		return ""
	}
	spec := p.specOf(t)
	if spec == nil || !api.NeedsNetworks(spec) {
		return ""
	}
	if strings.HasPrefix(t.Status.PendingReason, api.NetworkPendingPrefix) {
		return t.Status.PendingReason
	}
	return api.NetworkPendingPrefix + "waiting for addresses"
}
