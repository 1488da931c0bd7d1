package dispatcher

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// TestSessionsAreNotPinged: an agent's connection pings its manager after
// SessionPingInterval of quiet, which a session never has: heartbeats come
// at least every maxHeartbeatPeriod.
func TestSessionsAreNotPinged(t *testing.T) {
	if maxHeartbeatPeriod >= shoalpb.SessionPingInterval {
		t.Fatalf("the longest heartbeat period %s is not below the session connections' ping interval %s",
			maxHeartbeatPeriod, shoalpb.SessionPingInterval)
	}
}

// TestHeartbeatPeriod: the period the leader asks for keeps the agents'
// default in a small cluster, grows with the sessions so that the leader
// hears about heartbeatsPerSecond heartbeats, in steps, up to a bound; the
// deadlines counted in periods grow with it.
func TestHeartbeatPeriod(t *testing.T) {
	for _, tc := range []struct {
		sessions int
		want     time.Duration
	}{
		{0, 300 * time.Millisecond},
		{60, 300 * time.Millisecond},
		{61, 400 * time.Millisecond},
		{200, time.Second},
		{1000, 5 * time.Second},
		{5000, 25 * time.Second},
		{100000, 30 * time.Second},
	} {
		if got := heartbeatPeriod(tc.sessions); got != tc.want {
			t.Errorf("heartbeatPeriod(%d) = %s, want %s", tc.sessions, got, tc.want)
		}
	}
	if got := inPeriods(sessionTTL, minHeartbeatPeriod); got != sessionTTL {
		t.Errorf("session TTL at the shortest period = %s, want %s", got, sessionTTL)
	}
	if got, want := inPeriods(time.Hour, time.Second), time.Hour*10/3; got != want {
		t.Errorf("an hour's window at a 1 s period = %s, want %s", got, want)
	}
	if got, want := inPeriods(failConfirm, 3*minHeartbeatPeriod), 3*failConfirm; got != want {
		t.Errorf("failConfirm at three times the period = %s, want %s", got, want)
	}
	now := time.Unix(1000, 0)
	sessions := newSessionTable()
	p := newPacer(sessions, func() time.Time { return now }, nil)
	a, b := p.heartbeat(), p.heartbeat()
	if a != b {
		t.Error("the answer was built again for an unchanged period")
	}
	if got := a.GetHeartbeat().GetPeriod().AsDuration(); got != minHeartbeatPeriod {
		t.Errorf("the answer asks for %s, want %s", got, minHeartbeatPeriod)
	}

	// Sessions lost in numbers do not shorten the period at once.
	d := &Dispatcher{now: time.Now}
	for i := range 200 {
		sessions.attach(&session{d: d, nodeID: fmt.Sprint(i)})
	}
	if got := p.period(); got != time.Second {
		t.Fatalf("period at 200 sessions = %s, want 1s", got)
	}
	for i := range 180 {
		sessions.detach(sessions.get(fmt.Sprint(i)))
	}
	if got := p.period(); got != time.Second {
		t.Fatalf("period just after 180 of 200 sessions ended = %s, want still 1s", got)
	}
	now = now.Add(peakHold + time.Second)
	if got := p.period(); got != minHeartbeatPeriod {
		t.Fatalf("period a while after = %s, want %s", got, minHeartbeatPeriod)
	}

	// A new leader paces for the nodes the state says will open sessions.
	nodes := 400
	q := newPacer(newSessionTable(), func() time.Time { return now }, func() int { return nodes })
	if got := q.period(); got != 2*time.Second {
		t.Fatalf("period with no session and 400 nodes expected = %s, want 2s", got)
	}
	nodes = 0
	if got := q.period(); got != 2*time.Second {
		t.Fatalf("period right after the nodes went = %s, want still 2s (counted again after %s)", got, nodeRecount)
	}
	now = now.Add(peakHold + nodeRecount)
	if got := q.period(); got != minHeartbeatPeriod {
		t.Fatalf("period once the nodes are gone = %s, want %s", got, minHeartbeatPeriod)
	}
}
