package raftstore

import (
	"fmt"

	"github.com/shoal-sched/shoal/api"
)

// BatchResult is the outcome of one sub-command of a Batch. The response
// Value of a Batch is a []BatchResult, one per command in order; the Batch
// itself never fails, each sub-command succeeds or is rejected on its own
// (a rejected one changes nothing, the others still apply).
type BatchResult struct {
	Value any
	Err   error
	// FirstIndex is set when the command repeated a Request: the index of
	// the entry that applied it first.
	FirstIndex uint64
}

// WriteTasksResult is the response value of WriteTasks.
type WriteTasksResult struct {
	Created int
	Updated int
	Deleted int
	// Refused lists the updates that were not applied (a backward status or
	// desired state, or an unknown task), with the reason.
	Refused []PendingReason
}

// TaskStatusResult is the response value of UpdateTaskStatus.
type TaskStatusResult struct {
	Applied int
	// Stale counts updates that would have moved a task backwards (or
	// changed nothing).
	Stale int
	// Unknown counts updates for tasks that do not exist or are not bound
	// to the reporting node.
	Unknown int
}

// applyEntry applies the command of one log entry. A repeated Request
// answers with the index of its first application.
func (t *tx) applyEntry(cmd Command) result {
	if r, ok := deref(cmd).(Request); ok {
		v, first, err := t.applyRequest(r)
		return result{value: v, err: err, firstIndex: first}
	}
	v, err := t.apply(cmd)
	return result{value: v, err: err}
}

// apply dispatches one command. Handlers validate everything before their
// first write: a returned error means nothing was written.
func (t *tx) apply(cmd Command) (any, error) {
	switch c := deref(cmd).(type) {
	case CreateService:
		return t.createService(c)
	case UpdateService:
		return t.updateService(c)
	case RemoveService:
		return t.removeService(c)
	case UpsertNode:
		return t.upsertNode(c)
	case UpdateNode:
		return t.updateNode(c)
	case SetNodeStatus:
		return t.setNodeStatus(c)
	case RemoveNode:
		return t.removeNode(c)
	case WriteTasks:
		return t.writeTasks(c)
	case AssignTasks:
		return t.assignTasks(c), nil
	case UpdateTaskStatus:
		return t.updateTaskStatus(c), nil
	case SetCluster:
		return t.setCluster(c)
	case UpsertManager:
		return t.upsertManager(c)
	case RemoveManager:
		return t.removeManager(c)
	case SetCA:
		return t.setCA(c)
	case CreateSecret:
		return t.createSecret(c)
	case UpdateSecret:
		return t.updateSecret(c)
	case RemoveSecret:
		return t.removeSecret(c)
	case CreateNetwork:
		return t.createNetwork(c)
	case RemoveNetwork:
		return t.removeNetwork(c)
	case AllocateNetworks:
		return t.allocateNetworks(c)
	case SetUpdateStatus:
		return t.setUpdateStatus(c)
	case RollbackService:
		return t.rollbackService(c)
	case SetGossipKeys:
		return t.setGossipKeys(c)
	case SetAutolock:
		return t.setAutolock(c)
	case Request:
		v, _, err := t.applyRequest(c)
		return v, err
	case Batch:
		out := make([]BatchResult, len(c.Commands))
		for i, sub := range c.Commands {
			r := t.applyEntry(sub)
			out[i] = BatchResult{Value: r.value, Err: r.err, FirstIndex: r.firstIndex}
		}
		return out, nil
	case nil:
		return nil, fmt.Errorf("command: nil: %w", ErrInvalid)
	default:
		return nil, fmt.Errorf("command type %T: %w", cmd, ErrInvalid)
	}
}

func (t *tx) setCluster(c SetCluster) (any, error) {
	if c.Cluster.ID == "" {
		return nil, fmt.Errorf("cluster id: empty: %w", ErrInvalid)
	}
	if c.Settings != nil {
		return t.setClusterSettings(c)
	}
	if cur, ok := t.first(tableCluster, "id", clusterKey).(*api.ClusterInfo); ok {
		if cur.ID != c.Cluster.ID {
			return nil, fmt.Errorf("cluster %q: %w (cannot become %q)", cur.ID, ErrAlreadyExists, c.Cluster.ID)
		}
		return *cur, nil
	}
	info := c.Cluster
	t.insert(tableCluster, &info)
	return info, nil
}

func (t *tx) upsertManager(c UpsertManager) (any, error) {
	if c.Manager.ID == "" {
		return nil, fmt.Errorf("manager id: empty: %w", ErrInvalid)
	}
	if cur, ok := t.first(tableManagers, "id", c.Manager.ID).(*api.Manager); ok && *cur == c.Manager {
		return *cur, nil
	}
	m := c.Manager
	t.insert(tableManagers, &m)
	t.syncNodeRole(m.ID)
	return m, nil
}

func (t *tx) removeManager(c RemoveManager) (any, error) {
	cur, ok := t.first(tableManagers, "id", c.ID).(*api.Manager)
	if !ok {
		return nil, fmt.Errorf("manager %q: %w", c.ID, ErrNotFound)
	}
	t.remove(tableManagers, cur)
	t.syncNodeRole(c.ID)
	t.requestGossipRotation()
	return *cur, nil
}
