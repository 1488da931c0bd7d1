package dispatcher

import (
	"testing"
	"time"
)

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
		{300, 300 * time.Millisecond},
		{301, 400 * time.Millisecond},
		{1000, time.Second},
		{5000, 5 * time.Second},
		{100000, 5 * time.Second},
	} {
		if got := heartbeatPeriod(tc.sessions); got != tc.want {
			t.Errorf("heartbeatPeriod(%d) = %s, want %s", tc.sessions, got, tc.want)
		}
	}
	if got := inPeriods(sessionTTL, minHeartbeatPeriod); got != sessionTTL {
		t.Errorf("session TTL at the shortest period = %s, want %s", got, sessionTTL)
	}
	if got, want := inPeriods(failConfirm, 3*minHeartbeatPeriod), 3*failConfirm; got != want {
		t.Errorf("failConfirm at three times the period = %s, want %s", got, want)
	}
	p := &pacer{sessions: newSessionTable()}
	a, b := p.heartbeat(), p.heartbeat()
	if a != b {
		t.Error("the answer was built again for an unchanged period")
	}
	if got := a.GetHeartbeat().GetPeriod().AsDuration(); got != minHeartbeatPeriod {
		t.Errorf("the answer asks for %s, want %s", got, minHeartbeatPeriod)
	}
}
