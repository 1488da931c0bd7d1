package controlapi

import (
	"context"
	"testing"
	"time"
)

// lateTimer is a context whose deadline passed but whose timer has not
// fired yet, as the agent's reset can arrive before it does.
type lateTimer struct{ context.Context }

func (lateTimer) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

func TestCallOver(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want bool
	}{
		{"running, no deadline", context.Background(), false},
		{"deadline passed, timer not fired", lateTimer{context.Background()}, true},
	} {
		if got := callOver(tc.ctx); got != tc.want {
			t.Errorf("%s: callOver = %v, want %v", tc.name, got, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if !callOver(ctx) {
		t.Error("cancelled: callOver = false, want true")
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if callOver(ctx) {
		t.Error("an hour left: callOver = true, want false")
	}
}
