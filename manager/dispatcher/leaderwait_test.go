package dispatcher

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/internal/poll"
)

// TestLeaderWait: requests held while no leader is known are answered
// together once one is, and get heartbeats meanwhile; a request made
// while a leader is known is not held.
func TestLeaderWait(t *testing.T) {
	var leader atomic.Bool
	w := newLeaderWait(leader.Load)
	const held = 50
	var beats atomic.Int64
	done := make(chan struct{}, held)
	for range held {
		go func() {
			w.wait(t.Context(), func() error { beats.Add(1); return nil })
			done <- struct{}{}
		}()
	}
	// Every request gets at least one heartbeat while it is held.
	poll.Until(t, 10*time.Second, func() error {
		if n := beats.Load(); n < held {
			return fmt.Errorf("%d heartbeats for %d held requests", n, held)
		}
		return nil
	})
	select {
	case <-done:
		t.Fatal("a request was answered before a leader was known")
	default:
	}
	leader.Store(true)
	for range held {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("held requests were not answered once a leader was known")
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	w.wait(ctx, func() error { t.Error("a heartbeat while a leader is known"); return nil })
	if ctx.Err() != nil {
		t.Fatal("a request was held while a leader was known")
	}
}
