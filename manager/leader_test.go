package manager

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
)

// fakeBarrier is a fake of the Raft member's barrier: it fails the first
// fail calls, then passes, and records each call in order with the duty
// runs (log).
type fakeBarrier struct {
	mu   sync.Mutex
	fail int
	log  []string
}

func (b *fakeBarrier) note(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = append(b.log, s)
}

func (b *fakeBarrier) VerifyLeader(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail > 0 {
		b.fail--
		b.log = append(b.log, "barrier failed")
		return errors.New("verify leader: no quorum (fake)")
	}
	b.log = append(b.log, "barrier")
	return nil
}

// TestEveryDutyRunFollowsABarrier: a duty runs only once a barrier passed,
// in every term and after every restart of the duty.
func TestEveryDutyRunFollowsABarrier(t *testing.T) {
	m := &Manager{log: slog.New(slog.DiscardHandler)}
	b := &fakeBarrier{fail: 1}
	runs := 0
	d := duty{name: "test", run: func(context.Context) error {
		runs++
		b.note("run")
		if runs == 1 {
			return errors.New("duty failed (fake)")
		}
		return nil
	}}
	m.runDuty(t.Context(), b, d) // a term: barrier fails, then passes; the duty fails once
	m.runDuty(t.Context(), b, d) // the next term
	want := []string{"barrier failed", "barrier", "run", "barrier", "run", "barrier", "run"}
	if !slices.Equal(b.log, want) {
		t.Fatalf("calls %v, want %v", b.log, want)
	}
}
