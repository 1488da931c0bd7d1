package orchestrator

import (
	"crypto/rand"
	"strings"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// plan is everything one pass writes: task creations, updates (desired
// state, status), deletions, and the scheduler's assignments and pending
// reasons. It is committed as one or more log entries (see entries.go),
// each holding every change of the slots it touches, so that a slot is
// applied whole or not at all: a task is never shut down without its
// replacement being created in the same entry, which is what keeps a
// leader change from losing or duplicating work.
type plan struct {
	now     time.Time
	creates []*api.Task
	created map[string]bool
	updates map[string]*api.Task
	order   []string // update ids, first touch first (a stable command)
	deletes []string
	deleted map[string]bool
	assigns []raftstore.Assignment
	pending []raftstore.PendingReason
	// touched is every task the plan writes, as it last saw it: what
	// entries reads to find a change's slot.
	touched map[string]*api.Task
}

func newPlan(now time.Time) plan {
	return plan{
		now:     now,
		created: make(map[string]bool),
		updates: make(map[string]*api.Task),
		deleted: make(map[string]bool),
		touched: make(map[string]*api.Task),
	}
}

// effective returns the task as this pass has left it so far.
func (p *plan) effective(t *api.Task) *api.Task {
	if u, ok := p.updates[t.ID]; ok {
		return u
	}
	return t
}

// mutable returns a copy of t that the plan will write (t itself when the
// plan creates it).
func (p *plan) mutable(t *api.Task) *api.Task {
	if p.created[t.ID] {
		return t
	}
	if u, ok := p.updates[t.ID]; ok {
		return u
	}
	u := t.Clone()
	p.updates[t.ID] = u
	p.order = append(p.order, t.ID)
	p.touched[t.ID] = u
	return u
}

// create adds a new task of svc (desired running, state new) and returns
// it. The task names its spec by version; it carries no copy.
func (p *plan) create(svc *api.Service, slot uint64, nodeID string, attempt uint64, notBefore time.Time) *api.Task {
	t := &api.Task{
		ID:           strings.ToLower(rand.Text()),
		ServiceID:    svc.ID,
		ServiceName:  svc.Spec.Name,
		Slot:         slot,
		NodeID:       nodeID,
		SpecVersion:  svc.SpecVersion,
		DesiredState: api.TaskRunning,
		Status:       api.TaskStatus{State: api.TaskNew, Message: "created", Timestamp: p.now},
		Attempt:      attempt,
		NotBefore:    notBefore,
		CreatedAt:    p.now,
		UpdatedAt:    p.now,
	}
	p.creates = append(p.creates, t)
	p.created[t.ID] = true
	p.touched[t.ID] = t
	return t
}

// shutdown asks for t to stop. A task that never reached a node has no
// agent to report its end, so the plan records the end itself.
func (p *plan) shutdown(t *api.Task, msg string) *api.Task {
	u := p.mutable(t)
	if u.DesiredState < api.TaskShutdown {
		u.DesiredState = api.TaskShutdown
	}
	if u.Status.State < api.TaskAssigned {
		u.Status = api.TaskStatus{State: api.TaskShutdown, Message: msg, Timestamp: p.now}
	}
	return u
}

// orphan marks a task whose node is down or gone: it will not run again
// (its node, if it comes back, is told to drop it).
func (p *plan) orphan(t *api.Task, msg string) *api.Task {
	u := p.mutable(t)
	u.Status.State = api.TaskOrphaned
	u.Status.Message = msg
	u.Status.Err = ""
	u.Status.PendingReason = ""
	u.Status.Timestamp = p.now
	return u
}

// setPending records why a task waits, unless it already says so.
func (p *plan) setPending(t *api.Task, reason string) {
	if t.Status.State == api.TaskPending && t.Status.PendingReason == reason {
		return
	}
	if p.created[t.ID] {
		// Created in this entry: written pending from the start.
		u := p.mutable(t)
		u.Status = api.TaskStatus{State: api.TaskPending, Message: "pending", PendingReason: reason, Timestamp: p.now}
		return
	}
	p.pending = append(p.pending, raftstore.PendingReason{TaskID: t.ID, Reason: reason})
	p.touch(t)
}

// touch notes a task the plan writes by id only (pending, assigned,
// deleted), unless it has a newer copy of it.
func (p *plan) touch(t *api.Task) {
	if _, ok := p.touched[t.ID]; !ok {
		p.touched[t.ID] = t
	}
}

// assign records a scheduler decision. Every placement, a global task's
// on the node it names included, goes through AssignTasks: the FSM
// re-checks the node's room against the state it commits on, so two
// services cannot overcommit a node that this pass saw with room for both.
func (p *plan) assign(t *api.Task, nodeID string) {
	p.assigns = append(p.assigns, raftstore.Assignment{TaskID: t.ID, NodeID: nodeID})
	p.touch(t)
}

func (p *plan) remove(t *api.Task) {
	if p.deleted[t.ID] {
		return
	}
	p.deleted[t.ID] = true
	p.deletes = append(p.deletes, t.ID)
	p.touch(t)
}

func (p *plan) empty() bool {
	return len(p.creates) == 0 && len(p.order) == 0 && len(p.deletes) == 0 &&
		len(p.assigns) == 0 && len(p.pending) == 0
}
