package dispatcher

import (
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// TestMassLossGetsReconnectWindow: one or two nodes that lose their
// session get the grace period; when massLossMin nodes, and one in
// massLossShare of those with a session here, lose it together, every
// one of them gets the reconnect window instead: the leader, not each
// node, is the likelier cause. A node lost alone in a large cluster still
// gets the grace period.
func TestMassLossGetsReconnectWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	newLive := func(attached int) (*liveness, *sessionTable) {
		sessions := newSessionTable()
		l := newLiveness(Config{GracePeriod: DefaultGracePeriod, ReconnectWindow: DefaultReconnectWindow},
			sessions, slog.New(slog.DiscardHandler), clock)
		l.leading = true
		d := &Dispatcher{now: clock}
		for i := range attached {
			sessions.attach(&session{d: d, nodeID: fmt.Sprintf("up-%d", i)})
		}
		return l, sessions
	}
	waits := func(l *liveness) map[string]time.Duration {
		w := map[string]time.Duration{}
		for id, due := range l.due {
			w[id] = due.wait
		}
		return w
	}

	l, _ := newLive(20)
	l.sessionEnded("a", now)
	l.sessionEnded("b", now)
	for id, w := range waits(l) {
		if w != DefaultGracePeriod {
			t.Fatalf("with 2 of 22 nodes lost, %s waits %s, want the grace period %s", id, w, DefaultGracePeriod)
		}
	}
	l.sessionEnded("c", now) // 3 of 23: a mass loss
	for id, w := range waits(l) {
		if w != DefaultReconnectWindow {
			t.Fatalf("with 3 of 23 nodes lost together, %s waits %s, want the reconnect window %s", id, w, DefaultReconnectWindow)
		}
	}

	l, _ = newLive(100)
	for _, id := range []string{"a", "b", "c"} {
		l.sessionEnded(id, now)
	}
	for id, w := range waits(l) {
		if w != DefaultGracePeriod {
			t.Fatalf("with 3 of 103 nodes lost, %s waits %s, want the grace period %s", id, w, DefaultGracePeriod)
		}
	}
}
