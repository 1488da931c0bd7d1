package dispatcher

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// TestHoldSeenAfterTakeover: a new leader that took over from a state that
// did not yet hold a node's restart (the entry was committed, not yet
// applied there) learns of the hold when it applies, and the node still
// goes down once the hold passes without its agent.
func TestHoldSeenAfterTakeover(t *testing.T) {
	now := time.Unix(1000, 0)
	state, apply, l := livenessOfOneNode(t, func() time.Time { return now }, newSessionTable())
	l.takeOver() // n1 is ready here: it gets the reconnect window

	deadline := now.Add(time.Minute)
	apply(raftstore.SetNodeStatus{ID: "n1", Status: api.NodeRestarting, RestartDeadline: deadline, At: now, Message: "restarting"})
	now = now.Add(DefaultReconnectWindow + time.Second)
	l.check(t.Context())
	if n := state.Read().Node("n1"); n.Status != api.NodeRestarting {
		t.Fatalf("within its hold the node is %s (%s), want restarting", n.Status, n.StatusMessage)
	}
	now = deadline.Add(time.Second)
	l.check(t.Context())
	n := state.Read().Node("n1")
	if n.Status != api.NodeDown || !strings.Contains(n.StatusMessage, "restart hold") {
		t.Fatalf("after its hold the node is %s (%q), want down for its restart hold", n.Status, n.StatusMessage)
	}
}

// livenessOfOneNode is a liveness check over a local state that holds one
// ready node, n1, with apply to change that state.
func livenessOfOneNode(t *testing.T, clock func() time.Time, sessions *sessionTable) (*raftstore.State, func(raftstore.Command), *liveness) {
	t.Helper()
	state := raftstore.NewState()
	applier := raftstore.NewLocalApplier(state)
	apply := func(cmd raftstore.Command) {
		t.Helper()
		if _, err := applier.Apply(t.Context(), cmd); err != nil {
			t.Fatalf("apply %T: %v", cmd, err)
		}
	}
	now := clock()
	apply(raftstore.UpsertNode{Node: &api.Node{ID: "n1", Hostname: "n1", Role: api.RoleWorker, Status: api.NodeReady, CreatedAt: now, UpdatedAt: now}})
	l := newLiveness(Config{State: state, Applier: applier, GracePeriod: DefaultGracePeriod, ReconnectWindow: DefaultReconnectWindow},
		sessions, slog.New(slog.DiscardHandler), clock)
	return state, apply, l
}
