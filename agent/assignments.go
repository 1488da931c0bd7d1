package agent

import (
	"errors"
	"fmt"
	"sort"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// errResync means the assignment stream skipped a sequence number (or an
// increment came before the first full set): the agent must ask for a full
// set and ignore increments until it arrives.
var errResync = errors.New("assignment sequence gap: full set needed")

// assignmentSet is the agent's view of what one session assigned it. It is
// rebuilt by every full set and changed by increments that follow the last
// applied sequence number exactly.
type assignmentSet struct {
	synced bool
	seq    uint64
	tasks  map[string]*api.Task
}

// change is what one applied message asks the worker to do.
type change struct {
	full   bool
	upsert []*api.Task
	remove []string
}

func newAssignmentSet() *assignmentSet {
	return &assignmentSet{tasks: make(map[string]*api.Task)}
}

// apply applies m. It returns errResync (wrapped) when m cannot be applied
// in order; the set is then unsynced until the next full set. Tasks that do
// not decode are skipped and reported in bad, the rest still applies.
func (s *assignmentSet) apply(m *shoalpb.Assignments) (ch change, bad error) {
	if m.GetFull() {
		return s.applyFull(m)
	}
	if !s.synced {
		return change{}, fmt.Errorf("increment %d before a full set: %w", m.GetSequence(), errResync)
	}
	if m.GetSequence() != s.seq+1 {
		s.synced = false
		return change{}, fmt.Errorf("got sequence %d after %d: %w", m.GetSequence(), s.seq, errResync)
	}
	s.seq = m.GetSequence()
	upsert, bad := decodeTasks(m.GetUpsert())
	for _, t := range upsert {
		s.tasks[t.ID] = t
	}
	ch.upsert = upsert
	for _, id := range m.GetRemove() {
		if id == "" {
			continue
		}
		delete(s.tasks, id)
		ch.remove = append(ch.remove, id)
	}
	return ch, bad
}

func (s *assignmentSet) applyFull(m *shoalpb.Assignments) (change, error) {
	ch := change{full: true}
	next := make(map[string]*api.Task, len(m.GetUpsert()))
	upsert, bad := decodeTasks(m.GetUpsert())
	for _, t := range upsert {
		next[t.ID] = t
	}
	ch.upsert = upsert
	// Everything not in a full set is no longer assigned, named or not.
	removed := make(map[string]bool)
	for id := range s.tasks {
		if next[id] == nil {
			removed[id] = true
		}
	}
	for _, id := range m.GetRemove() {
		if id != "" && next[id] == nil {
			removed[id] = true
		}
	}
	for id := range removed {
		ch.remove = append(ch.remove, id)
	}
	sort.Strings(ch.remove)
	s.tasks, s.seq, s.synced = next, m.GetSequence(), true
	return ch, bad
}

// decodeTasks decodes the tasks of a message, skipping and reporting those
// that do not decode: one bad task does not hold up the others.
func decodeTasks(pts []*shoalpb.Task) ([]*api.Task, error) {
	var tasks []*api.Task
	var errs []error
	for _, pt := range pts {
		t, err := decodeTask(pt)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tasks = append(tasks, t)
	}
	return tasks, errors.Join(errs...)
}

// decodeTask converts an assigned task, refusing one the agent cannot act on.
func decodeTask(pt *shoalpb.Task) (*api.Task, error) {
	if pt.GetId() == "" {
		return nil, errors.New("assigned task has an empty id")
	}
	t, err := shoalpb.ToTask(pt)
	if err != nil {
		return nil, fmt.Errorf("assigned task %s: %w", pt.GetId(), err)
	}
	return t, nil
}
