package raftstore

import (
	"fmt"
	"strings"

	"github.com/shoal-sched/shoal/api"
)

func (t *tx) service(id string) *api.Service {
	s, _ := t.first(tableServices, "id", id).(*api.Service)
	return s
}

// serviceNamed returns the service named name (in any case, as the name
// index folds it), or nil. Like a lookup by id it reads the state before
// the transaction under what the transaction wrote (see tx): a read of the
// name index through the write transaction made the next create of a
// batch copy that index's path again.
func (t *tx) serviceNamed(name string) *api.Service {
	key := strings.ToLower(name)
	if s, ok := t.namesHere[key]; ok {
		return s // nil: removed in this transaction
	}
	s, _ := t.baseFirst(tableServices, "name", name).(*api.Service)
	if s == nil {
		return nil
	}
	// A name does not change, but should the service under it have been
	// written here, what counts is what was written.
	if s = t.service(s.ID); s == nil || strings.ToLower(s.Spec.Name) != key {
		return nil
	}
	return s
}

// createService stores a copy of the proposer's service. A SpecVersion of
// zero becomes 1 (the first version).
func (t *tx) createService(c CreateService) (any, error) {
	if c.Service == nil {
		return nil, fmt.Errorf("service: missing: %w", ErrInvalid)
	}
	if c.Service.ID == "" {
		return nil, fmt.Errorf("service %q: id: empty: %w", c.Service.Spec.Name, ErrInvalid)
	}
	if c.Service.Spec.Name == "" {
		return nil, fmt.Errorf("service id %q: name: empty: %w", c.Service.ID, ErrInvalid)
	}
	if err := checkReplicas(&c.Service.Spec); err != nil {
		return nil, err
	}
	if t.service(c.Service.ID) != nil {
		return nil, fmt.Errorf("service id %q: %w", c.Service.ID, ErrAlreadyExists)
	}
	if t.serviceNamed(c.Service.Spec.Name) != nil {
		return nil, fmt.Errorf("service %q: %w", c.Service.Spec.Name, ErrAlreadyExists)
	}
	if err := t.checkSecretRefs(&c.Service.Spec); err != nil {
		return nil, err
	}
	s := c.Service.Clone()
	if s.SpecVersion == 0 {
		s.SpecVersion = 1
	}
	t.insert(tableServices, s)
	t.putServiceSpecs(s)
	t.event("service", "create", Event{Service: s})
	return s, nil
}

// updateService replaces the spec, keeping the previous one for rollback.
// The name cannot change (tasks and stacks refer to it); an empty name in
// the new spec means "unchanged". The new version is stored for the tasks
// that will run it; the version before the previous one goes unless a task
// still runs it.
func (t *tx) updateService(c UpdateService) (any, error) {
	cur := t.service(c.ID)
	if cur == nil {
		return nil, fmt.Errorf("service id %q: %w", c.ID, ErrNotFound)
	}
	if c.ExpectedVersion != 0 && c.ExpectedVersion != cur.SpecVersion {
		return nil, fmt.Errorf("service %q: at version %d, expected %d: %w",
			cur.Spec.Name, cur.SpecVersion, c.ExpectedVersion, ErrConflict)
	}
	if c.Spec.Name != "" && c.Spec.Name != cur.Spec.Name {
		return nil, fmt.Errorf("service %q: name %q: a service cannot be renamed: %w",
			cur.Spec.Name, c.Spec.Name, ErrInvalid)
	}
	if err := checkReplicas(&c.Spec); err != nil {
		return nil, err
	}
	c.Spec.Name = cur.Spec.Name
	if err := t.checkSecretRefs(&c.Spec); err != nil {
		return nil, err
	}
	s := cur.Clone()
	s.PreviousSpec = cur.Spec.Clone()
	s.Spec = *c.Spec.Clone()
	s.Spec.Name = cur.Spec.Name
	s.SpecVersion++
	s.UpdatedAt = c.At
	if c.RegistryAuth != nil {
		a := *c.RegistryAuth
		s.RegistryAuth = &a
	}
	t.insert(tableServices, s)
	t.putSpec(s.ID, s.SpecVersion, &s.Spec)
	t.collectSpecs(s.ID)
	t.event("service", "update", Event{Service: s})
	return s, nil
}

// removeService deletes the service and asks for the removal of its tasks
// (desired state remove); the orchestrators and agents do the rest. Its
// spec versions stay while its tasks do. The command's size does not grow
// with the tasks: the FSM finds them.
func (t *tx) removeService(c RemoveService) (any, error) {
	cur := t.service(c.ID)
	if cur == nil {
		return nil, fmt.Errorf("service id %q: %w", c.ID, ErrNotFound)
	}
	for _, task := range t.tasksOf("service_id", c.ID) {
		if task.DesiredState == api.TaskRemove {
			continue
		}
		nt := revise(task)
		nt.DesiredState = api.TaskRemove
		nt.UpdatedAt = c.At
		t.insert(tableTasks, nt)
		t.event("task", "update", Event{Task: nt})
	}
	t.remove(tableServices, cur)
	t.collectSpecs(c.ID)
	t.event("service", "remove", Event{Service: cur})
	return cur, nil
}

// tasksOf lists tasks by a task index, in index order (deterministic).
func (t *tx) tasksOf(index, key string) []*api.Task {
	it, err := t.txn.Get(tableTasks, index, key)
	if err != nil {
		panic(fmt.Sprintf("raftstore: list tasks.%s: %v", index, err))
	}
	return collect[*api.Task](it)
}
