package dispatcher

import (
	"context"
	"sync"
	"time"
)

// During an election no manager knows a leader. A follower that answered
// each agent at once with an empty redirect sent every agent of the
// cluster into its retry backoff: a thousand agents asked again and again,
// each time a little later, and by the time the new leader was elected
// most of them were sleeping out a backoff of a second or more. So a
// manager that knows no leader holds the agent's session request until it
// learns one (or becomes it), within leaderHold, and then answers: the
// agents arrive at the new leader as soon as there is one. While it holds
// a request, the manager sends the agent a heartbeat answer every
// holdBeat, so that the agent does not give up on it.
const (
	// leaderHold bounds the wait: longer than an election on a loaded
	// machine, short enough that an agent tries again (and its manager
	// list) when there is no quorum at all.
	leaderHold = 5 * time.Second
	// holdBeat is well within the agent's establish timeout (2 s).
	holdBeat = 700 * time.Millisecond
	// leaderPoll is how often one poller, shared by every held request,
	// asks Raft whether a leader is known.
	leaderPoll = 20 * time.Millisecond
)

// leaderWait lets many held requests wait on one poller.
type leaderWait struct {
	known func() bool // a leader is known (or this manager leads)
	mu    sync.Mutex
	ch    chan struct{} // closed when the running poller ends; nil: none runs
}

func newLeaderWait(known func() bool) *leaderWait { return &leaderWait{known: known} }

// wait returns when a leader is known, ctx ends, leaderHold passed or
// beat failed; it calls beat every holdBeat meanwhile.
func (w *leaderWait) wait(ctx context.Context, beat func() error) {
	if w.known() {
		return
	}
	t := time.NewTimer(leaderHold)
	defer t.Stop()
	b := time.NewTicker(holdBeat)
	defer b.Stop()
	known := w.poll()
	for {
		select {
		case <-known:
			if w.known() {
				return
			}
			// The poller, started for an earlier request, gave up.
			known = w.poll()
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-b.C:
			if beat() != nil {
				return
			}
		}
	}
}

// poll returns a channel that is closed when a leader is known or after
// leaderHold, starting the poller if none runs.
func (w *leaderWait) poll() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		return w.ch
	}
	ch := make(chan struct{})
	w.ch = ch
	go func() {
		t := time.NewTicker(leaderPoll)
		defer t.Stop()
		deadline := time.Now().Add(leaderHold)
		for !w.known() && time.Now().Before(deadline) {
			<-t.C
		}
		w.mu.Lock()
		w.ch = nil
		w.mu.Unlock()
		close(ch)
	}()
	return ch
}
