package raftstore

import (
	"fmt"

	"github.com/shoal-sched/shoal/api"
)

// nodeRoom is what an AssignTasks command knows of one node: the node, and
// the reservations of its active tasks plus the assignments made to it
// earlier in the same command.
type nodeRoom struct {
	node *api.Node
	used api.Resources
}

// assignTasks commits the scheduler's decisions after checking each one
// against the state as it is now (the scheduler worked from an older view).
// Assignments are taken in order; one that no longer fits is refused with
// its reason and changes nothing but that reason, which the task, still
// waiting for a node, shows as its pending reason.
func (t *tx) assignTasks(c AssignTasks) AssignResult {
	var res AssignResult
	rooms := make(map[string]*nodeRoom)
	specs := make(specCache)
	for _, a := range c.Assignments {
		task, reason := t.assignable(a)
		if reason != "" {
			res.Refused = append(res.Refused, PendingReason{TaskID: a.TaskID, Reason: reason})
			continue
		}
		spec := specs.get(t, task.ServiceID, task.SpecVersion)
		if spec == nil {
			reason := fmt.Sprintf("spec version %d of service %q is not stored", task.SpecVersion, task.ServiceName)
			res.Refused = append(res.Refused, PendingReason{TaskID: a.TaskID, Reason: reason})
			continue
		}
		room, ok := rooms[a.NodeID]
		if !ok {
			room = t.room(a.NodeID, specs)
			rooms[a.NodeID] = room
		}
		need := spec.Resources.Reservations
		if reason := room.refuse(need, a.NodeID); reason != "" {
			res.Refused = append(res.Refused, PendingReason{TaskID: a.TaskID, Reason: reason})
			t.markPending(PendingReason{TaskID: a.TaskID, Reason: reason}, c)
			continue
		}
		room.used = room.used.Add(need)
		nt := revise(task)
		nt.NodeID = a.NodeID
		nt.Status = api.TaskStatus{State: api.TaskAssigned, Message: "assigned", Timestamp: c.At}
		nt.UpdatedAt = c.At
		t.insert(tableTasks, nt)
		t.event("task", "update", Event{Task: nt})
		res.Assigned++
	}
	for _, p := range c.Pending {
		t.markPending(p, c)
	}
	return res
}

// assignable returns the task, or why it cannot be assigned to a.NodeID
// whatever the node's room. A task that names its node from creation (a
// global service's) waits for a node like any other until it is assigned,
// but only to the node it names: it goes through the same node checks, so
// two services cannot overcommit a node between the scheduler's view and
// the commit.
func (t *tx) assignable(a Assignment) (*api.Task, string) {
	task := t.task(a.TaskID)
	switch {
	case task == nil:
		return nil, fmt.Sprintf("task %q not found", a.TaskID)
	case task.NodeID != "" && (task.NodeID != a.NodeID || task.Status.State > api.TaskPending):
		return nil, fmt.Sprintf("task is already bound to node %q", task.NodeID)
	case task.Status.State > api.TaskPending:
		return nil, fmt.Sprintf("task is %s", task.Status.State)
	case task.DesiredState > api.TaskRunning:
		return nil, fmt.Sprintf("task is to be %s", task.DesiredState)
	}
	return task, ""
}

// room returns a node's record and the reservations its active tasks hold.
func (t *tx) room(nodeID string, specs specCache) *nodeRoom {
	room := &nodeRoom{node: t.node(nodeID)}
	if room.node == nil {
		return room
	}
	for _, task := range t.tasksOnNode(nodeID) {
		if !task.Status.State.Active() {
			continue
		}
		// Every task's version is stored while the task exists.
		if spec := specs.get(t, task.ServiceID, task.SpecVersion); spec != nil {
			room.used = room.used.Add(spec.Resources.Reservations)
		}
	}
	return room
}

// refuse says why a task reserving need cannot go to this node ("" if it can).
func (r *nodeRoom) refuse(need api.Resources, nodeID string) string {
	n := r.node
	switch {
	case n == nil:
		return fmt.Sprintf("node %q not found", nodeID)
	case n.Status != api.NodeReady:
		return fmt.Sprintf("node %q is %s", nodeID, n.Status)
	case n.Availability != api.AvailabilityActive:
		return fmt.Sprintf("node %q availability is %s", nodeID, n.Availability)
	}
	free := n.Resources.Sub(r.used)
	if need.NanoCPUs > free.NanoCPUs {
		return fmt.Sprintf("node %q: not enough CPU: need %d nanocpus, %d free", nodeID, need.NanoCPUs, free.NanoCPUs)
	}
	if need.MemoryBytes > free.MemoryBytes {
		return fmt.Sprintf("node %q: not enough memory: need %d bytes, %d free", nodeID, need.MemoryBytes, free.MemoryBytes)
	}
	return ""
}

// markPending records why a task could not be placed. Tasks that are gone
// or past pending (assigned, or ended) are left alone, and so is a task
// already pending for the same reason (the scheduler repeats itself every
// pass). A task that names its node but is not assigned yet (global) waits
// like any other.
func (t *tx) markPending(p PendingReason, c AssignTasks) {
	cur := t.task(p.TaskID)
	if cur == nil || cur.Status.State > api.TaskPending {
		return
	}
	if cur.Status.State == api.TaskPending && cur.Status.PendingReason == p.Reason {
		return
	}
	nt := revise(cur)
	nt.Status = api.TaskStatus{State: api.TaskPending, Message: "pending", PendingReason: p.Reason, Timestamp: c.At}
	nt.UpdatedAt = c.At
	t.insert(tableTasks, nt)
	t.event("task", "update", Event{Task: nt})
}

// tasksOnNode lists the tasks bound to a node as this transaction leaves
// them. Like the lookups by id (see tx), it reads the state as it was
// before the transaction under what the transaction wrote, instead of the
// write transaction's node_id index: a read through an index the
// transaction has changed clones it and drops its cache of written nodes,
// and an assignment, which reads every node it fills, then paid for each
// later insert again (the larger part of a 1,000-task AssignTasks).
func (t *tx) tasksOnNode(nodeID string) []*api.Task {
	written := t.written[tableTasks]
	var out []*api.Task
	it, err := t.base.Get(tableTasks, "node_id", nodeID)
	if err != nil {
		panic(fmt.Sprintf("raftstore: list tasks.node_id: %v", err))
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		task := obj.(*api.Task)
		// One the transaction wrote (or deleted) is listed below, if it
		// is still here.
		if _, ok := written[task.ID]; !ok {
			out = append(out, task)
		}
	}
	// Every task the transaction wrote with this node is in boundHere,
	// once, unless it was deleted and made again.
	bound := t.boundHere[nodeID]
	seen := make(map[string]bool, len(bound))
	for _, id := range bound {
		task, _ := written[id].(*api.Task)
		if task == nil || task.NodeID != nodeID || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, task)
	}
	return out
}
