package raftstore

import (
	"cmp"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"
	"github.com/shoal-sched/shoal/api"
)

// View is a read-only snapshot. Lists are sorted (services by name, tasks by
// service name then slot then creation, nodes by hostname then id).
//
// The values it returns are shared with the store and with other views:
// treat them as immutable and Clone before changing one.
type View struct {
	txn   *memdb.Txn
	index uint64
}

// Index is the Raft index of the last command applied to this view.
func (v *View) Index() uint64 { return v.index }

// Cluster returns the cluster's identity (zero before SetCluster).
func (v *View) Cluster() api.ClusterInfo {
	if c, ok := v.first(tableCluster, "id", clusterKey).(*api.ClusterInfo); ok {
		return *c
	}
	return api.ClusterInfo{}
}

// Service returns the service with id, or nil.
func (v *View) Service(id string) *api.Service {
	s, _ := v.first(tableServices, "id", id).(*api.Service)
	return s
}

// ServiceByName returns the service named name, or nil.
func (v *View) ServiceByName(name string) *api.Service {
	s, _ := v.first(tableServices, "name", name).(*api.Service)
	return s
}

// Services returns every service, sorted by name.
func (v *View) Services() []*api.Service {
	// The name index is unique, so its order is the name order.
	return collect[*api.Service](v.get(tableServices, "name"))
}

// CompareServiceNames orders services as Services lists them.
func CompareServiceNames(a, b *api.Service) int {
	return strings.Compare(foldKey(a.Spec.Name), foldKey(b.Spec.Name))
}

// GlobalServices returns the services of global mode, in no set order.
func (v *View) GlobalServices() []*api.Service {
	return collect[*api.Service](v.get(tableServices, "global", flagIndexKey))
}

// AnyServicePublishes reports whether any service publishes a port,
// without reading the services: a check that runs after every write.
func (v *View) AnyServicePublishes() bool {
	return v.first(tableServices, "publishes", flagIndexKey) != nil
}

// Task returns the task with id, or nil.
func (v *View) Task(id string) *api.Task {
	t, _ := v.first(tableTasks, "id", id).(*api.Task)
	return t
}

// Tasks returns every task.
func (v *View) Tasks() []*api.Task {
	return sortTasks(collect[*api.Task](v.get(tableTasks, "id")))
}

// TasksByID returns every task in the order of their IDs, for a caller
// that groups them itself: at 100,000 tasks, the sort of Tasks is a third
// of an orchestrator's full pass.
func (v *View) TasksByID() []*api.Task {
	return collect[*api.Task](v.get(tableTasks, "id"))
}

// TasksByService returns the tasks of one service.
func (v *View) TasksByService(serviceID string) []*api.Task {
	return sortTasks(collect[*api.Task](v.get(tableTasks, "service_id", serviceID)))
}

// EachTaskOfService yields the tasks of one service in no set order, for a
// caller that orders them itself: at 10,000 tasks, the sort is a third of
// reading them.
func (v *View) EachTaskOfService(serviceID string) iter.Seq[*api.Task] {
	return func(yield func(*api.Task) bool) {
		it := v.get(tableTasks, "service_id", serviceID)
		for obj := it.Next(); obj != nil; obj = it.Next() {
			if !yield(obj.(*api.Task)) {
				return
			}
		}
	}
}

// TasksByNode returns the tasks bound to one node.
func (v *View) TasksByNode(nodeID string) []*api.Task {
	return sortTasks(collect[*api.Task](v.get(tableTasks, "node_id", nodeID)))
}

// TasksByDesiredState returns the tasks whose desired state is s.
func (v *View) TasksByDesiredState(s api.TaskState) []*api.Task {
	if s != api.TaskRunning {
		return sortTasks(collect[*api.Task](v.get(tableTasks, "desired_state", desiredKey(s))))
	}
	// Running is not indexed (see the schema): scan.
	var out []*api.Task
	it := v.get(tableTasks, "id")
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if t := obj.(*api.Task); t.DesiredState == api.TaskRunning {
			out = append(out, t)
		}
	}
	return sortTasks(out)
}

// TasksAwaitingNode returns the tasks that wait to be placed
// (api.Task.AwaitsNode).
func (v *View) TasksAwaitingNode() []*api.Task {
	return sortTasks(collect[*api.Task](v.get(tableTasks, "awaiting_node", flagIndexKey)))
}

// Node returns the node with id, or nil.
func (v *View) Node(id string) *api.Node {
	n, _ := v.first(tableNodes, "id", id).(*api.Node)
	return n
}

// Nodes returns every node, sorted by hostname then id.
func (v *View) Nodes() []*api.Node {
	nodes := collect[*api.Node](v.get(tableNodes, "id"))
	slices.SortStableFunc(nodes, func(a, b *api.Node) int {
		return cmp.Or(cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.ID, b.ID))
	})
	return nodes
}

// EachNode yields every node in no set order, for a caller that only
// counts (a leader counts 5,000 nodes every second; sorting them by
// hostname was most of the count's cost).
func (v *View) EachNode() iter.Seq[*api.Node] {
	return func(yield func(*api.Node) bool) {
		it := v.get(tableNodes, "id")
		for obj := it.Next(); obj != nil; obj = it.Next() {
			if !yield(obj.(*api.Node)) {
				return
			}
		}
	}
}

// Managers returns every recorded manager, sorted by id.
func (v *View) Managers() []api.Manager {
	ms := collect[*api.Manager](v.get(tableManagers, "id"))
	out := make([]api.Manager, len(ms))
	for i, m := range ms {
		out[i] = *m
	}
	return out
}

// Manager returns the manager with id.
func (v *View) Manager(id string) (api.Manager, bool) {
	if m, ok := v.first(tableManagers, "id", id).(*api.Manager); ok {
		return *m, true
	}
	return api.Manager{}, false
}

func (v *View) first(table, index, key string) any {
	obj, err := v.txn.First(table, index, key)
	if err != nil {
		panic(fmt.Sprintf("raftstore: read %s.%s: %v", table, index, err))
	}
	return obj
}

func (v *View) get(table, index string, args ...any) memdb.ResultIterator {
	it, err := v.txn.Get(table, index, args...)
	if err != nil {
		panic(fmt.Sprintf("raftstore: list %s.%s: %v", table, index, err))
	}
	return it
}

func collect[T any](it memdb.ResultIterator) []T {
	var out []T
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(T))
	}
	return out
}

// sortTasks orders tasks by service name, slot, creation time, then id (so
// that the order never depends on anything but the tasks themselves).
func sortTasks(tasks []*api.Task) []*api.Task {
	slices.SortFunc(tasks, compareTasks)
	return tasks
}

func compareTasks(a, b *api.Task) int {
	return cmp.Or(
		cmp.Compare(a.ServiceName, b.ServiceName),
		cmp.Compare(a.Slot, b.Slot),
		a.CreatedAt.Compare(b.CreatedAt),
		cmp.Compare(a.ID, b.ID),
	)
}

// TaskCounts returns how many tasks are in each observed state, without
// copying or sorting them (for metrics scraped while the store is large).
func (v *View) TaskCounts() map[api.TaskState]int {
	out := map[api.TaskState]int{}
	it := v.get(tableTasks, "id")
	for o := it.Next(); o != nil; o = it.Next() {
		out[o.(*api.Task).Status.State]++
	}
	return out
}
