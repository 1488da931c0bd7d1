package agent

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/internal/poll"
)

// TestSilenceVerdict: the manager is silent once the deadline passed and
// the agent's heartbeats went unanswered, or after the backstop whatever
// was sent; an agent that sent nothing (it was stalled itself) waits.
func TestSilenceVerdict(t *testing.T) {
	const d = 900 * time.Millisecond
	for _, tc := range []struct {
		name      string
		silentFor time.Duration
		beats     int
		want      time.Duration
	}{
		{"within the deadline", 300 * time.Millisecond, 5, 600 * time.Millisecond},
		{"deadline passed, beats unanswered", d, unansweredBeats, 0},
		{"deadline passed, one beat sent", d + 100*time.Millisecond, 1, d / silentBeats},
		{"deadline passed, the agent sent nothing", 2 * d, 0, d / silentBeats},
		{"last check before the backstop", silentBackstop*d - 100*time.Millisecond, 0, 100 * time.Millisecond},
		{"backstop", silentBackstop * d, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &silence{deadline: d, beats: tc.beats}
			if got := s.next(tc.silentFor); got != tc.want {
				t.Fatalf("next(%s) with %d beats = %s, want %s", tc.silentFor, tc.beats, got, tc.want)
			}
		})
	}
}

// TestSilenceFires: a manager that answers none of the heartbeats is
// declared silent; an answer resets the count.
func TestSilenceFires(t *testing.T) {
	var fired atomic.Int64
	s := newSilence(20*time.Millisecond, func(time.Duration) { fired.Add(1) })
	defer s.stop()
	s.sent()
	s.heard()
	s.mu.Lock()
	beats := s.beats
	s.mu.Unlock()
	if beats != 0 {
		t.Fatalf("%d beats counted after an answer, want 0", beats)
	}
	for range unansweredBeats {
		s.sent()
	}
	poll.Until(t, 5*time.Second, func() error {
		if fired.Load() == 0 {
			return errors.New("not declared silent yet")
		}
		return nil
	})
	if n := fired.Load(); n != 1 {
		t.Fatalf("onSilent called %d times, want once", n)
	}
}

// TestSilenceSetDeadline: a longer deadline (the leader asked for a longer
// heartbeat period) holds back a verdict the old one would have given; a
// shorter one brings the check forward.
func TestSilenceSetDeadline(t *testing.T) {
	var fired atomic.Int64
	s := newSilence(20*time.Millisecond, func(time.Duration) { fired.Add(1) })
	defer s.stop()
	s.setDeadline(time.Hour)
	for range unansweredBeats {
		s.sent()
	}
	s.mu.Lock()
	silentFor := time.Since(s.heardAt)
	verdict := s.next(silentFor + 100*time.Millisecond)
	s.mu.Unlock()
	if verdict == 0 {
		t.Fatal("declared silent within the new one-hour deadline")
	}
	s.setDeadline(10 * time.Millisecond)
	poll.Until(t, 5*time.Second, func() error {
		if fired.Load() == 0 {
			return errors.New("not declared silent after the deadline was shortened")
		}
		return nil
	})
}
