package orchestrator

import (
	"errors"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
	"github.com/shoal-sched/shoal/scheduler"
)

// nodeLoads is what the tasks bound to each node hold, as the scheduler
// counts it (scheduler.Holds), at one index of the state. A full pass
// builds it from every task; a narrowed pass brings it forward with the
// store's changes since (raftstore.State.Changes), so that placing one
// task does not read every task of the cluster. It is the one thing an
// orchestrator keeps between passes besides hints, and it is a cache: a
// full pass rebuilds it from the store alone.
type nodeLoads struct {
	index  uint64
	valid  bool
	byNode map[string]*scheduler.Load
	// held is, by task, what the load counts for it and on which node;
	// holders counts them by node (a task may hold nothing measurable,
	// so the load alone cannot say when a node's entry may go).
	held    map[string]held
	holders map[string]int
}

type held struct {
	node string
	h    scheduler.Holding
}

// boundHolding is what t holds on its node in the schedule step: a task
// holds its node's resources once it is assigned there and until it ends
// (api.TaskState.Active); a task that names its node but waits to be
// placed there holds nothing yet.
func boundHolding(t *api.Task, spec *api.ServiceSpec) (held, bool) {
	if t.NodeID == "" || !t.Status.State.Active() {
		return held{}, false
	}
	h, ok := scheduler.Holds(t, spec)
	return held{node: t.NodeID, h: h}, ok
}

// rebuild counts tasks (every task of the view at index) afresh. The maps
// are kept, emptied: a full pass every FullEvery refills them to about
// the same size.
func (l *nodeLoads) rebuild(index uint64, tasks []*api.Task, specOf scheduler.SpecOf) {
	l.index, l.valid = index, true
	if l.byNode == nil {
		l.byNode = make(map[string]*scheduler.Load)
		l.held = make(map[string]held, len(tasks))
		l.holders = make(map[string]int)
	}
	clear(l.byNode)
	clear(l.held)
	clear(l.holders)
	for _, t := range tasks {
		l.set(t, specOf)
	}
}

// advance brings the loads to the pass's view: by the changes since the
// loads' index, or, when those are no longer held, by every task.
func (l *nodeLoads) advance(state *raftstore.State, p *pass) error {
	if p.all != nil {
		l.rebuild(p.index, p.all, p.specOf)
		return nil
	}
	if l.valid && l.index == p.index {
		return nil
	}
	var events []raftstore.Event
	var err error
	if l.valid && l.index < p.index {
		events, err = state.Changes(l.index, p.index)
	}
	if !l.valid || l.index > p.index || err != nil {
		if err != nil && !errors.Is(err, raftstore.ErrCompacted) {
			return err
		}
		l.rebuild(p.index, p.view.Tasks(), p.specOf)
		return nil
	}
	for _, e := range events {
		switch {
		case e.Task == nil:
		case e.Action == "remove":
			l.drop(e.Task.ID)
		default:
			l.set(e.Task, p.specOf)
		}
	}
	l.index = p.index
	return nil
}

// set counts t as it is now, in place of what was counted for it.
func (l *nodeLoads) set(t *api.Task, specOf scheduler.SpecOf) {
	l.drop(t.ID)
	hd, ok := boundHolding(t, specOf(t))
	if !ok {
		return
	}
	load := l.byNode[hd.node]
	if load == nil {
		load = &scheduler.Load{}
		l.byNode[hd.node] = load
	}
	load.Add(hd.h)
	l.held[t.ID] = hd
	l.holders[hd.node]++
}

// drop stops counting task id.
func (l *nodeLoads) drop(id string) {
	hd, ok := l.held[id]
	if !ok {
		return
	}
	delete(l.held, id)
	l.byNode[hd.node].Remove(hd.h)
	if l.holders[hd.node]--; l.holders[hd.node] == 0 {
		delete(l.byNode, hd.node)
		delete(l.holders, hd.node)
	}
}

// planned returns the loads as the pass's plan leaves them (tasks it
// orphans, stops, creates or deletes), without changing l: the plan may
// not commit. Only the nodes the plan touches are copied.
func (l *nodeLoads) planned(p *pass) func(node string) *scheduler.Load {
	changed := make(map[string]*scheduler.Load)
	load := func(node string) *scheduler.Load {
		if c, ok := changed[node]; ok {
			return c
		}
		c := &scheduler.Load{}
		if base := l.byNode[node]; base != nil {
			c = base.Clone()
		}
		changed[node] = c
		return c
	}
	move := func(id string, now *api.Task) {
		if old, ok := l.held[id]; ok {
			load(old.node).Remove(old.h)
		}
		if now == nil {
			return
		}
		if hd, ok := boundHolding(now, p.specOf(now)); ok {
			load(hd.node).Add(hd.h)
		}
	}
	for _, id := range p.plan.order {
		if !p.plan.deleted[id] {
			move(id, p.plan.updates[id])
		}
	}
	for _, id := range p.plan.deletes {
		move(id, nil)
	}
	for _, t := range p.plan.creates {
		if !p.plan.deleted[t.ID] {
			move(t.ID, t)
		}
	}
	empty := &scheduler.Load{}
	return func(node string) *scheduler.Load {
		if c, ok := changed[node]; ok {
			return c
		}
		if base := l.byNode[node]; base != nil {
			return base
		}
		return empty
	}
}
