package agent

import (
	"sync"
	"time"
)

// silence decides when the manager of a session has gone silent. The
// leader answers every heartbeat, so the manager is silent when the
// receive deadline has passed since its last word *and* the agent sent at
// least unansweredBeats heartbeats in that time. Wall time alone would
// blame the manager for the agent's own stall: an agent starved of CPU
// (many agents in one process, a host under load) reads the answers
// waiting in its socket late, and a bare timer fires first; every such
// false alarm ended a session, downed a live node and orphaned its tasks,
// which loaded the cluster further. A stalled agent sends no heartbeats
// either, so the count holds it back. silentBackstop deadlines of wall
// time end the session whatever was sent: a send stuck on a dead
// connection stops the heartbeats the count needs.
type silence struct {
	deadline time.Duration
	onSilent func(silentFor time.Duration)

	mu      sync.Mutex
	heardAt time.Time
	beats   int // heartbeats sent since heardAt
	timer   *time.Timer
	stopped bool
}

// unansweredBeats is how many heartbeats must go unanswered (beside the
// deadline) for the manager to count as silent: with the default interval
// of 300 ms and a deadline of three intervals, a dead manager is still
// noticed at 900 ms.
const unansweredBeats = silentBeats - 1

func newSilence(deadline time.Duration, onSilent func(time.Duration)) *silence {
	s := &silence{deadline: deadline, onSilent: onSilent, heardAt: time.Now()}
	s.mu.Lock()
	s.timer = time.AfterFunc(deadline, s.check)
	s.mu.Unlock()
	return s
}

// heard notes a message from the manager.
func (s *silence) heard() {
	s.mu.Lock()
	s.heardAt, s.beats = time.Now(), 0
	s.mu.Unlock()
}

// sent notes a heartbeat the agent is about to send.
func (s *silence) sent() {
	s.mu.Lock()
	s.beats++
	s.mu.Unlock()
}

// setDeadline changes the receive deadline (the heartbeat period changed);
// the check that is due is moved to match.
func (s *silence) setDeadline(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || d == s.deadline {
		return
	}
	s.deadline = d
	s.timer.Reset(max(d-time.Since(s.heardAt), 0))
}

func (s *silence) stop() {
	s.mu.Lock()
	s.stopped = true
	s.timer.Stop()
	s.mu.Unlock()
}

// check runs when the deadline may have passed: it calls onSilent, or
// checks again when the verdict could change.
func (s *silence) check() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	silentFor := time.Since(s.heardAt)
	wait := s.next(silentFor)
	if wait > 0 {
		s.timer.Reset(wait)
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.mu.Unlock()
	s.onSilent(silentFor)
}

// next returns how long to wait before checking again, or 0 if the
// manager is silent now. s.mu is held.
func (s *silence) next(silentFor time.Duration) time.Duration {
	switch {
	case silentFor >= silentBackstop*s.deadline:
		return 0
	case silentFor < s.deadline:
		return s.deadline - silentFor
	case s.beats >= unansweredBeats:
		return 0
	}
	// The deadline passed but the agent itself was too busy to ask:
	// look again after another heartbeat interval.
	return min(s.deadline/silentBeats, silentBackstop*s.deadline-silentFor)
}
