package dispatcher

import (
	"log/slog"
	"testing"
	"time"
)

// TestForgiveStall: a stall of the leader beyond the slack moves back
// the deadlines of nodes without a session and the silence of open
// sessions (never past now); a short delay moves nothing.
func TestForgiveStall(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	sessions := newSessionTable()
	l := newLiveness(Config{GracePeriod: DefaultGracePeriod, ReconnectWindow: DefaultReconnectWindow},
		sessions, slog.New(slog.DiscardHandler), clock)
	d := &Dispatcher{now: clock}
	quiet := &session{d: d, nodeID: "quiet"}
	quiet.seen.Store(now.Add(-3 * time.Second).UnixNano())
	talking := &session{d: d, nodeID: "talking"}
	talking.seen.Store(now.Add(-100 * time.Millisecond).UnixNano())
	sessions.attach(quiet)
	sessions.attach(talking)
	since := now.Add(-400 * time.Millisecond)
	l.due["gone"] = dueDown{since: since, wait: DefaultGracePeriod}

	l.forgive(stallSlack)
	if got := l.due["gone"].since; !got.Equal(since) {
		t.Fatalf("a delay of %s moved the grace period's start to %s", stallSlack, got)
	}

	l.forgive(2 * time.Second)
	if got, want := l.due["gone"].since, since.Add(2*time.Second); !got.Equal(want) {
		t.Fatalf("grace period starts at %s after a 2s stall, want %s", got, want)
	}
	if got, want := quiet.silentFor(), time.Second; got != want {
		t.Fatalf("a session silent 3s before a 2s stall is silent for %s, want %s", got, want)
	}
	if got := talking.silentFor(); got != 0 {
		t.Fatalf("a session heard 100ms ago is silent for %s after the stall, want 0 (not in the future)", got)
	}
}
