package raftstore

import (
	"testing"

	"github.com/shoal-sched/shoal/api"
)

// TestNodeRoleFollowsManagerRecords: a node's role comes from the manager
// records (voter: manager; standby or none: worker), never from what the
// node's registration claims.
func TestNodeRoleFollowsManagerRecords(t *testing.T) {
	claimsManager := testNode("n1", api.NodeReady, "")
	claimsManager.Role = api.RoleManager
	hostOfM1 := testNode("m1", api.NodeReady, "")
	standby := api.Manager{ID: "n1", RaftAddr: "127.0.0.1:3", Addr: "127.0.0.1:4", NonVoter: true}
	promoted := standby
	promoted.NonVoter = false
	role := func(id string, want api.NodeRole) func(*testing.T, *View, any) {
		return func(t *testing.T, v *View, _ any) {
			t.Helper()
			n := v.Node(id)
			if n == nil || n.Role != want {
				t.Fatalf("node %s = %+v, want role %s", id, n, want)
			}
		}
	}
	runApplyCases(t, []applyCase{
		{name: "a worker's claim to be a manager is ignored", cmd: UpsertNode{Node: claimsManager}, check: role("n1", api.RoleWorker)},
		{name: "the node of a voting manager is a manager", cmd: UpsertNode{Node: hostOfM1}, check: role("m1", api.RoleManager)},
		{name: "a standby manager's node stays a worker", cmd: UpsertManager{Manager: standby}, check: role("n1", api.RoleWorker)},
		{name: "a manager record makes its node a manager", cmd: UpsertManager{Manager: promoted}, check: role("n1", api.RoleManager)},
	})
	// A sequence: promote, demote, forget.
	s := fixture(t)
	for _, step := range []struct {
		cmd  Command
		want api.NodeRole
	}{
		{UpsertManager{Manager: standby}, api.RoleWorker},
		{UpsertManager{Manager: promoted}, api.RoleManager},
		{UpsertNode{Node: testNode("n1", api.NodeReady, "")}, api.RoleManager},
		{UpsertManager{Manager: standby}, api.RoleWorker},
		{UpsertManager{Manager: promoted}, api.RoleManager},
		{RemoveManager{ID: "n1"}, api.RoleWorker},
	} {
		if _, _, err := s.apply(0, step.cmd); err != nil {
			t.Fatalf("%T: %v", step.cmd, err)
		}
		if got := s.Read().Node("n1").Role; got != step.want {
			t.Fatalf("after %T %+v: role %s, want %s", step.cmd, step.cmd, got, step.want)
		}
	}
}
