package dispatcher

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/membership"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// TestGossipDeadProbesTheSession: at a large cluster's heartbeat period a
// live agent's session is silent for many seconds between beats, so
// gossip's "dead" cannot be confirmed by silence. The leader probes the
// session instead: a node that answers stays ready (and is probed again
// while gossip holds it dead); one that does not answer within probeWait
// goes down, long before its next beat was due.
func TestGossipDeadProbesTheSession(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	sessions := newSessionTable()
	state, _, l := livenessOfOneNode(t, clock, sessions)
	// 5,000 nodes to pace for: a 25 s period.
	l.pace = newPacer(sessions, clock, func() int { return 5000 })
	if p := l.period(); p != 25*time.Second {
		t.Fatalf("period at 5,000 nodes = %s, want 25s", p)
	}
	_, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	d := &Dispatcher{log: slog.New(slog.DiscardHandler), now: clock}
	s := &session{d: d, nodeID: "n1", agentAddr: "10.0.0.1:4244", cancel: cancel, notices: make(chan *shoalpb.ManagerMessage, noticeBuffer)}
	s.touch()
	sessions.attach(s)
	l.takeOver()

	probed := func(when string) {
		t.Helper()
		select {
		case m := <-s.notices:
			if !m.GetHeartbeat().GetProbe() {
				t.Fatalf("%s: the session was told %v, want a probe", when, m)
			}
		default:
			t.Fatalf("%s: the session was not probed", when)
		}
	}
	status := func() *api.Node { return state.Read().Node("n1") }

	now = now.Add(10 * time.Second) // between two beats
	l.observe(membership.Event{Type: membership.EventFail, Meta: membership.Meta{NodeID: "n1", Role: api.RoleWorker, GRPCAddr: s.agentAddr}})
	l.check(t.Context())
	probed("on gossip's dead")
	if n := status(); n.Status != api.NodeReady {
		t.Fatalf("on gossip's dead alone the node is %s (%s), want ready until the probe is answered or not", n.Status, n.StatusMessage)
	}
	wait := l.probeWait()
	if wait > 3*time.Second {
		t.Fatalf("probeWait at a 25 s period = %s: it must not grow with the period", wait)
	}

	// The agent answers: still ready, and probed again after the wait.
	now = now.Add(50 * time.Millisecond)
	s.touch()
	now = now.Add(wait)
	l.check(t.Context())
	if n := status(); n.Status != api.NodeReady {
		t.Fatalf("after answering its probe the node is %s (%s), want ready", n.Status, n.StatusMessage)
	}
	probed("while gossip still holds it dead")

	// No answer this time: down after the wait, 24 s before its next beat.
	now = now.Add(wait / 2)
	l.check(t.Context())
	if n := status(); n.Status != api.NodeReady {
		t.Fatalf("within probeWait the node is %s, want ready", n.Status)
	}
	now = now.Add(wait)
	l.check(t.Context())
	n := status()
	if n.Status != api.NodeDown || !strings.Contains(n.StatusMessage, "did not answer a probe") {
		t.Fatalf("after an unanswered probe the node is %s (%q), want down for the unanswered probe", n.Status, n.StatusMessage)
	}
}
