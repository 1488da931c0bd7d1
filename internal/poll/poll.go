// Package poll is the one poll-until-a-deadline loop of shoal's tests: a
// test waits for a condition, never for a fixed time.
package poll

import (
	"testing"
	"time"
)

// Interval is the pause between two checks.
const Interval = 10 * time.Millisecond

// Until calls cond until it returns nil. It fails t with cond's last error
// once timeout has passed, or when the test ends first.
func Until(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", timeout, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test ended while waiting: %v", err)
		case <-tick.C:
		}
	}
}
