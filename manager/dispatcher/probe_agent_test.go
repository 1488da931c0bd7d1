package dispatcher_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/membership"
	"github.com/shoal-sched/shoal/raftstore"
)

// TestAgentAnswersProbes: a real agent answers the leader's probe at once.
// The leader paces for 5,000 nodes (a 25 s period, so the agent's first
// beat is 25 s after its session opens); gossip then declares the agent's
// node dead. Without an answer the node would go down within the probe's
// wait (under 3 s); it must stay ready.
func TestAgentAnswersProbes(t *testing.T) {
	s := newSingle(t, time.Minute)
	now := time.Now()
	for i := range 5000 {
		// Ready without a session: counted as nodes that will open one,
		// and given the reconnect window at a 25 s period (minutes).
		id := fmt.Sprintf("away-%04d", i)
		if _, err := s.apply.Apply(t.Context(), raftstore.UpsertNode{Node: &api.Node{ID: id, Hostname: id, Role: api.RoleWorker,
			Status: api.NodeReady, CreatedAt: now, UpdatedAt: now}}); err != nil {
			t.Fatal(err)
		}
	}
	ta := addReadyAgents(t, s, 1)[0]
	id := ta.nodeID()
	managertest.WaitFor(t, 10*time.Second, func() error {
		if !s.d.Leading() {
			return errors.New("the liveness check does not lead yet")
		}
		return nil
	})
	s.d.ObserveMember(membership.Event{Type: membership.EventFail, Meta: membership.Meta{NodeID: id, Role: api.RoleWorker, GRPCAddr: ta.addr()}})
	holdsFor(t, 6*time.Second, func() error {
		if hasDown(nodeHistory(s, id)) {
			return errors.New("gossip's dead took down a node whose agent was there to answer the probe")
		}
		return nil
	})
}
