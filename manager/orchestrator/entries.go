package orchestrator

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// The budget of one log entry of a pass: at most maxEntryTasks tasks and
// about maxEntryBytes of encoded commands, whichever comes first. A pass
// that creates or places 10,000 tasks writes ten entries of about 0.4 MB
// instead of one of several MB: far under raftstore.MaxEntryBytes, and
// small enough that replicating and syncing one entry does not hold up
// Raft's heartbeats.
const (
	maxEntryTasks = 1000
	maxEntryBytes = 1 << 20
)

// unitKey names the changes an entry must hold together: those of one
// group (a slot, or a node of a global service) of one service. The
// reconcilers decide a group as a whole — stop a task and create its
// replacement, place the replacement — so an entry with all of a group's
// changes leaves it consistent on its own. If a later entry of the pass
// fails, the next pass sees each group either as before this pass or as
// after it, never halfway, and picks up the rest.
type unitKey struct {
	service string
	group   groupKey
}

func compareUnits(a, b unitKey) int {
	return cmp.Or(strings.Compare(a.service, b.service), compareKeys(a.group, b.group))
}

// unitOf is the unit of a task: its group in its service as this pass
// groups it, or for a task of a removed service its slot and node.
func (p *pass) unitOf(t *api.Task) unitKey {
	if svc := p.service(t.ServiceID); svc != nil {
		return unitKey{t.ServiceID, keyOf(svc, t)}
	}
	return unitKey{t.ServiceID, groupKey{slot: t.Slot, node: t.NodeID}}
}

// unit is the part of a plan that writes one unitKey's tasks.
type unit struct {
	key     unitKey
	creates []*api.Task
	updates []*api.Task
	deletes []string
	assigns []raftstore.Assignment
	// created is when the task of each of assigns was created (for the
	// scheduling delay).
	created []time.Time
	pending []raftstore.PendingReason
	tasks   int // the tasks it writes
	bytes   int // estimated size in a command
}

// node is the node the unit places its task on ("" if it places none).
func (u *unit) node() string {
	if len(u.assigns) == 0 {
		return ""
	}
	return u.assigns[0].NodeID
}

// entry is a run of units committed as one log entry.
type entry struct {
	now   time.Time
	units []*unit
}

// entries cuts the plan into log entries: its units in a deterministic
// order, each entry taking units while they fit the budget. A unit over the
// budget on its own (a group with a long history) gets an entry to itself.
//
// Units go by the node they place a task on, then by key: the FSM reads
// the tasks of every node an AssignTasks fills, and with units in slot
// order each of ten entries of a 10,000-task pass filled all 1,000 nodes
// (spread places consecutive slots on different nodes), ten times the
// reads of one entry.
func (p *plan) entries(unitOf func(*api.Task) unitKey) []entry {
	units := p.units(unitOf)
	var out []entry
	cur := entry{now: p.now}
	tasks, bytes := 0, 0
	for _, u := range units {
		if len(cur.units) > 0 && (tasks+u.tasks > maxEntryTasks || bytes+u.bytes > maxEntryBytes) {
			out = append(out, cur)
			cur = entry{now: p.now}
			tasks, bytes = 0, 0
		}
		cur.units = append(cur.units, u)
		tasks += u.tasks
		bytes += u.bytes
	}
	if len(cur.units) > 0 {
		out = append(out, cur)
	}
	return out
}

// units sorts the plan's changes into units, each change in the order the
// plan made it, and the units by node and key.
func (p *plan) units(unitOf func(*api.Task) unitKey) []*unit {
	byKey := make(map[unitKey]*unit)
	// of returns the unit of task id and counts the task in it once: with
	// its first change, or with the create or update that writes it whole.
	of := func(id string, whole bool, bytes int) *unit {
		k := unitOf(p.touched[id])
		u, ok := byKey[k]
		if !ok {
			u = &unit{key: k}
			byKey[k] = u
		}
		if whole || !p.writesWhole(id) {
			u.tasks++
		}
		u.bytes += bytes
		return u
	}
	for _, t := range p.creates {
		u := of(t.ID, true, taskBytes(t))
		u.creates = append(u.creates, t)
	}
	for _, id := range p.order {
		if t := p.updates[id]; !p.deleted[id] {
			u := of(id, true, taskBytes(t))
			u.updates = append(u.updates, t)
		}
	}
	for _, id := range p.deletes {
		u := of(id, false, len(id)+4)
		u.deletes = append(u.deletes, id)
	}
	for _, a := range p.assigns {
		u := of(a.TaskID, false, len(a.TaskID)+len(a.NodeID)+32)
		u.assigns = append(u.assigns, a)
		u.created = append(u.created, p.touched[a.TaskID].CreatedAt)
	}
	for _, r := range p.pending {
		u := of(r.TaskID, false, len(r.TaskID)+jsonBytes(r.Reason)+32)
		u.pending = append(u.pending, r)
	}
	out := make([]*unit, 0, len(byKey))
	for _, u := range byKey {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b *unit) int {
		return cmp.Or(strings.Compare(a.node(), b.node()), compareUnits(a.key, b.key))
	})
	return out
}

// writesWhole reports whether the plan writes task id in full (a create
// or an update), beside any change by id.
func (p *plan) writesWhole(id string) bool {
	return p.created[id] || (p.updates[id] != nil && !p.deleted[id])
}

// taskBytes estimates a task's size in a command's JSON: its field names,
// numbers and timestamps (about 300 bytes; 400 counted, to err on the
// large side) and its strings. raftstore
// refuses an entry over its hard limit whatever the estimate said, and
// the caller then cuts the entry smaller (see Orchestrator.commit).
func taskBytes(t *api.Task) int {
	return 400 + len(t.ID) + len(t.ServiceID) + jsonBytes(t.ServiceName) + len(t.NodeID) +
		jsonBytes(t.Status.Message) + jsonBytes(t.Status.Err) + jsonBytes(t.Status.PendingReason) +
		len(t.Status.ContainerID)
}

// jsonBytes bounds the size of s as a JSON string: a byte may take up to
// six when escaped, but text that is mostly plain takes little more than
// its length; count twice it.
func jsonBytes(s string) int { return 2 * len(s) }

// command is the entry as one command: WriteTasks, AssignTasks, or a
// Batch of both (in that order, so assignments can bind tasks created with
// them).
func (e entry) command() raftstore.Command {
	w := raftstore.WriteTasks{At: e.now}
	a := raftstore.AssignTasks{At: e.now}
	for _, u := range e.units {
		w.Create = append(w.Create, u.creates...)
		w.Update = append(w.Update, u.updates...)
		w.Delete = append(w.Delete, u.deletes...)
		a.Assignments = append(a.Assignments, u.assigns...)
		a.Pending = append(a.Pending, u.pending...)
	}
	var cmds []raftstore.Command
	if len(w.Create) > 0 || len(w.Update) > 0 || len(w.Delete) > 0 {
		cmds = append(cmds, w)
	}
	if len(a.Assignments) > 0 || len(a.Pending) > 0 {
		cmds = append(cmds, a)
	}
	if len(cmds) == 1 {
		return cmds[0]
	}
	return raftstore.Batch{Commands: cmds}
}

// halves cuts an entry of several units in two.
func (e entry) halves() (entry, entry) {
	n := len(e.units) / 2
	return entry{now: e.now, units: e.units[:n]}, entry{now: e.now, units: e.units[n:]}
}

// counts sums what the entry writes, for the log.
func (e entry) counts() (creates, updates, deletes, assigns int) {
	for _, u := range e.units {
		creates += len(u.creates)
		updates += len(u.updates)
		deletes += len(u.deletes)
		assigns += len(u.assigns)
	}
	return
}
