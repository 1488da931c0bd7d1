package raftstore

import (
	"time"

	"github.com/shoal-sched/shoal/api"
)

// A node's role is never what its agent says: it follows the manager
// records, which the leader commits as it changes the Raft configuration.
// A host whose manager is a voter is a manager node (its agent runs with
// the manager's id as its node id); every other node, a standby manager's
// included, is a worker.

// roleOf is the role of node id as the manager records say.
func (t *tx) roleOf(id string) api.NodeRole {
	if m, ok := t.first(tableManagers, "id", id).(*api.Manager); ok && !m.NonVoter {
		return api.RoleManager
	}
	return api.RoleWorker
}

// syncNodeRole brings node id's role in line with the manager records
// after one of them changed; a node that does not exist (a manager host
// that runs no agent) is left alone.
func (t *tx) syncNodeRole(id string) {
	cur := t.node(id)
	if cur == nil {
		return
	}
	if role := t.roleOf(id); role != cur.Role {
		n := cur.Clone()
		n.Role = role
		t.putNode(n, time.Time{})
	}
}
