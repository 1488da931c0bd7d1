package raftstore

import (
	"fmt"
	"strconv"

	"github.com/shoal-sched/shoal/api"
)

// specRecord is one version of a service's spec. Tasks name the spec they
// run by (service ID, spec version) instead of carrying a copy, so that
// the entry that creates many replicas of a large spec stays small; readers
// look the spec up with View.ServiceSpec.
//
// A version is kept while something refers to it: the service's current or
// previous spec, or a task. The command that drops the last reference (a
// task deleted, the service updated or removed) deletes it, so every member
// deletes it at the same index.
type specRecord struct {
	ServiceID string           `json:"service_id"`
	Version   uint64           `json:"version"`
	Spec      *api.ServiceSpec `json:"spec"`
}

// specKey is the primary key of a spec version. Service IDs hold no NUL
// and a version is digits, so the key names one (service, version) only.
func specKey(serviceID string, version uint64) string {
	return serviceID + "\x00" + strconv.FormatUint(version, 10)
}

func (r *specRecord) key() string { return specKey(r.ServiceID, r.Version) }

// spec returns a stored version of a service's spec, or nil.
func (t *tx) spec(serviceID string, version uint64) *api.ServiceSpec {
	if r, ok := t.first(tableSpecs, "id", specKey(serviceID, version)).(*specRecord); ok {
		return r.Spec
	}
	return nil
}

// putSpec stores spec as version of the service, replacing what a removed
// service of the same ID may have left there. spec must not change after.
func (t *tx) putSpec(serviceID string, version uint64, spec *api.ServiceSpec) {
	t.insert(tableSpecs, &specRecord{ServiceID: serviceID, Version: version, Spec: spec})
}

// putServiceSpecs stores the versions a service names: its spec and, when
// it has one, its previous spec (the version before).
func (t *tx) putServiceSpecs(s *api.Service) {
	t.putSpec(s.ID, s.SpecVersion, &s.Spec)
	if s.PreviousSpec != nil && s.SpecVersion > 1 {
		t.putSpec(s.ID, s.SpecVersion-1, s.PreviousSpec)
	}
}

// adoptSpec takes the spec a task carries in a log entry written before
// tasks referred to versions: it becomes the stored version unless that
// version is stored already. It returns the task without its copy.
func (t *tx) adoptSpec(task *api.Task) *api.Task {
	if !task.HasSpec() {
		return task
	}
	if t.spec(task.ServiceID, task.SpecVersion) == nil {
		t.putSpec(task.ServiceID, task.SpecVersion, task.Spec.Clone())
	}
	task.Spec = nil
	return task
}

// collectSpecs deletes the versions of a service's spec that nothing
// refers to any more: neither the service (if it still exists) nor any of
// its tasks.
func (t *tx) collectSpecs(serviceID string) {
	it, err := t.txn.Get(tableSpecs, "service_id", serviceID)
	if err != nil {
		panic(fmt.Sprintf("raftstore: list specs.service_id: %v", err))
	}
	recs := collect[*specRecord](it)
	used := make(map[uint64]bool, 2)
	if svc := t.service(serviceID); svc != nil {
		used[svc.SpecVersion] = true
		if svc.PreviousSpec != nil {
			used[svc.SpecVersion-1] = true
		}
	}
	unused := recs[:0]
	for _, r := range recs {
		if !used[r.Version] {
			unused = append(unused, r)
		}
	}
	if len(unused) == 0 {
		return
	}
	t.taskVersions(serviceID, used)
	for _, r := range unused {
		if !used[r.Version] {
			t.remove(tableSpecs, r)
		}
	}
}

// taskVersions adds to used the spec versions the service's tasks run. It
// reads the tasks as they were before this transaction under those it has
// written (see tx), which spares the write transaction's task indexes the
// clone a read through them would cost. A task's service and version never
// change, so only deletions and creations matter.
func (t *tx) taskVersions(serviceID string, used map[uint64]bool) {
	written := t.written[tableTasks]
	it, err := t.base.Get(tableTasks, "service_id", serviceID)
	if err != nil {
		panic(fmt.Sprintf("raftstore: list tasks.service_id: %v", err))
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		task := obj.(*api.Task)
		if w, ok := written[task.ID]; ok && w == nil {
			continue // deleted in this transaction
		}
		used[task.SpecVersion] = true
	}
	for _, obj := range written {
		if task, ok := obj.(*api.Task); ok && task.ServiceID == serviceID {
			used[task.SpecVersion] = true
		}
	}
}

// specRef names a spec version without building its key.
type specRef struct {
	service string
	version uint64
}

// specCache remembers the spec versions one command has looked up (an
// assignment reads the spec of every task on the nodes it fills).
type specCache map[specRef]*api.ServiceSpec

func (c specCache) get(t *tx, serviceID string, version uint64) *api.ServiceSpec {
	ref := specRef{serviceID, version}
	s, ok := c[ref]
	if !ok {
		s = t.spec(serviceID, version)
		c[ref] = s
	}
	return s
}

// ServiceSpec returns version of a service's spec, or nil if the store
// does not hold it. It holds every version that the service (its current
// and previous spec) or one of its tasks refers to.
func (v *View) ServiceSpec(serviceID string, version uint64) *api.ServiceSpec {
	if r, ok := v.first(tableSpecs, "id", specKey(serviceID, version)).(*specRecord); ok {
		return r.Spec
	}
	return nil
}

// serviceSpecs lists every stored spec version, in key order.
func (v *View) serviceSpecs() []*specRecord {
	return collect[*specRecord](v.get(tableSpecs, "id"))
}
