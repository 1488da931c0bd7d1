package raftstore

import (
	"fmt"
	"strings"
	"time"

	"github.com/shoal-sched/shoal/api"
)

func (t *tx) task(id string) *api.Task {
	task, _ := t.first(tableTasks, "id", id).(*api.Task)
	return task
}

func validTaskState(s api.TaskState) bool { return s >= api.TaskNew && s <= api.TaskRemove }

func checkTask(task *api.Task, what string) error {
	switch {
	case task == nil:
		return fmt.Errorf("%s task: missing: %w", what, ErrInvalid)
	case task.ID == "":
		return fmt.Errorf("%s task of service %q slot %d: id: empty: %w", what, task.ServiceID, task.Slot, ErrInvalid)
	case !validTaskState(task.DesiredState):
		return fmt.Errorf("task %q: desired state %d: %w", task.ID, int(task.DesiredState), ErrInvalid)
	case !validTaskState(task.Status.State) || task.Status.State == api.TaskRemove:
		return fmt.Errorf("task %q: state %d: %w", task.ID, int(task.Status.State), ErrInvalid)
	}
	return nil
}

// writeTasks creates, updates and deletes tasks. Creates are all-or-nothing
// (a task id that exists, or a service or spec version that does not,
// rejects the command); updates are applied field by field, forward only,
// and what cannot apply is listed in the result; deleting an unknown task is
// a no-op. The spec versions that deleted tasks were the last to run go
// with them.
func (t *tx) writeTasks(c WriteTasks) (any, error) {
	services, err := t.checkCreates(c.Create)
	if err != nil {
		return nil, err
	}
	for _, u := range c.Update {
		if err := checkTask(u, "updated"); err != nil {
			return nil, err
		}
	}
	var res WriteTasksResult
	for i, task := range c.Create {
		// A task holds no reference types but its spec copy, which the
		// store does not keep: a shallow copy is a deep one.
		nt := t.adoptSpec(revise(task))
		if nt.ServiceName == "" {
			nt.ServiceName = services[i].Spec.Name
		}
		if nt.CreatedAt.IsZero() {
			nt.CreatedAt = c.At
		}
		if nt.UpdatedAt.IsZero() {
			nt.UpdatedAt = c.At
		}
		t.insert(tableTasks, nt)
		t.event("task", "create", Event{Task: nt})
		res.Created++
	}
	for _, u := range c.Update {
		t.updateTask(u, c.At, &res)
	}
	var touched []string // services of deleted tasks, first deletion first
	seen := make(map[string]bool)
	for _, id := range c.Delete {
		if cur := t.task(id); cur != nil {
			t.remove(tableTasks, cur)
			t.event("task", "remove", Event{Task: cur})
			res.Deleted++
			if !seen[cur.ServiceID] {
				seen[cur.ServiceID] = true
				touched = append(touched, cur.ServiceID)
			}
		}
	}
	for _, id := range touched {
		t.collectSpecs(id)
	}
	return res, nil
}

// checkCreates validates new tasks and returns the service of each.
func (t *tx) checkCreates(create []*api.Task) ([]*api.Service, error) {
	services := make([]*api.Service, len(create))
	seen := make(map[string]bool, len(create))
	for i, task := range create {
		if err := checkTask(task, "new"); err != nil {
			return nil, err
		}
		if seen[task.ID] || t.task(task.ID) != nil {
			return nil, fmt.Errorf("task %q: %w", task.ID, ErrAlreadyExists)
		}
		seen[task.ID] = true
		if services[i] = t.service(task.ServiceID); services[i] == nil {
			return nil, fmt.Errorf("task %q: service id %q: %w", task.ID, task.ServiceID, ErrNotFound)
		}
		// A task carries a spec only in entries written before tasks
		// referred to versions; adoptSpec stores it.
		if !task.HasSpec() && t.spec(task.ServiceID, task.SpecVersion) == nil {
			return nil, fmt.Errorf("task %q: service %q spec version %d (the service is at %d): %w",
				task.ID, services[i].Spec.Name, task.SpecVersion, services[i].SpecVersion, ErrNotFound)
		}
	}
	return services, nil
}

// updateTask applies what may change of one task: a later desired state, a
// node for a task that has none, and a status that moves forward (or keeps
// its state with new details).
func (t *tx) updateTask(u *api.Task, at time.Time, res *WriteTasksResult) {
	cur := t.task(u.ID)
	if cur == nil {
		res.Refused = append(res.Refused, PendingReason{TaskID: u.ID, Reason: "task not found"})
		return
	}
	nt := revise(cur)
	var why []string
	switch {
	case u.DesiredState > cur.DesiredState:
		nt.DesiredState = u.DesiredState
	case u.DesiredState < cur.DesiredState:
		why = append(why, fmt.Sprintf("desired state %s would go back to %s", cur.DesiredState, u.DesiredState))
	}
	switch {
	case u.NodeID == cur.NodeID:
	case cur.NodeID == "":
		nt.NodeID = u.NodeID
	default:
		why = append(why, fmt.Sprintf("task is bound to node %q, not %q", cur.NodeID, u.NodeID))
	}
	switch {
	case statusAdvances(cur.Status, u.Status):
		nt.Status = mergeStatus(cur.Status, u.Status, at)
	case u.Status.State < cur.Status.State:
		why = append(why, fmt.Sprintf("state %s would go back to %s", cur.Status.State, u.Status.State))
	}
	if len(why) > 0 {
		res.Refused = append(res.Refused, PendingReason{TaskID: u.ID, Reason: strings.Join(why, "; ")})
	}
	if nt.DesiredState == cur.DesiredState && nt.NodeID == cur.NodeID && nt.Status.Equal(cur.Status) {
		return
	}
	nt.UpdatedAt = at
	t.insert(tableTasks, nt)
	t.event("task", "update", Event{Task: nt})
	res.Updated++
}

// statusAdvances reports whether next may replace cur: a forward move, or
// the same non-terminal state with different details.
func statusAdvances(cur, next api.TaskStatus) bool {
	if cur.State.CanMoveTo(next.State) {
		return true
	}
	if next.State != cur.State || cur.State.Terminal() {
		return false
	}
	next.Timestamp = cur.Timestamp
	if next.ContainerID == "" {
		next.ContainerID = cur.ContainerID
	}
	return !next.Equal(cur)
}

// mergeStatus returns next, stamped at "at" when it carries no time, and
// keeping the container id when the report leaves it out.
func mergeStatus(cur, next api.TaskStatus, at time.Time) api.TaskStatus {
	if next.Timestamp.IsZero() {
		next.Timestamp = at
	}
	if next.ContainerID == "" {
		next.ContainerID = cur.ContainerID
	}
	return next
}

// updateTaskStatus applies agents' reports. Reports for unknown tasks, for
// tasks bound to another node, and backward moves are counted and skipped.
func (t *tx) updateTaskStatus(c UpdateTaskStatus) TaskStatusResult {
	var res TaskStatusResult
	for _, u := range c.Updates {
		cur := t.task(u.TaskID)
		if cur == nil || (c.NodeID != "" && cur.NodeID != c.NodeID) {
			res.Unknown++
			continue
		}
		if !validTaskState(u.Status.State) || !statusAdvances(cur.Status, u.Status) {
			res.Stale++
			continue
		}
		nt := revise(cur)
		nt.Status = mergeStatus(cur.Status, u.Status, c.At)
		nt.UpdatedAt = c.At
		markStarted(nt)
		t.insert(tableTasks, nt)
		t.event("task", "update", Event{Task: nt})
		res.Applied++
	}
	return res
}

// revise returns a copy of a stored task to change its top-level fields
// (status, node, desired state). A stored task carries no spec, so the
// copy shares nothing with it.
func revise(task *api.Task) *api.Task {
	c := *task
	return &c
}
