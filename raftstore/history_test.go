package raftstore

import (
	"errors"
	"fmt"
	"testing"
)

// createServices applies n CreateService commands and returns their indexes.
func createServices(t *testing.T, s *State, from, n int) []uint64 {
	t.Helper()
	a := NewLocalApplier(s)
	var out []uint64
	for i := from; i < from+n; i++ {
		resp, err := a.Apply(t.Context(), CreateService{Service: testService(fmt.Sprint("svc-", i), fmt.Sprint("s", i), 1)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.Index)
	}
	return out
}

func eventIndexes(evs []Event) []uint64 {
	var out []uint64
	for _, e := range evs {
		out = append(out, e.Index)
	}
	return out
}

// TestWatchFromResumesWithoutGaps: a watch from any held index gives every
// later change once, in order: the backlog first, then the subscription.
func TestWatchFromResumesWithoutGaps(t *testing.T) {
	s := NewState()
	idx := createServices(t, s, 0, 10)
	w, err := s.WatchFrom(idx[3], 16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Cancel)
	later := createServices(t, s, 10, 3)
	got := eventIndexes(w.Backlog)
	for range 3 {
		got = append(got, eventIndexes(<-w.Events)...)
	}
	want := append(append([]uint64{}, idx[4:]...), later...)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("watch from %d saw %v, want %v", idx[3], got, want)
	}
}

// TestWatchFromTooOld: once the history has forgotten a change after the
// index, the watch says so instead of skipping it.
func TestWatchFromTooOld(t *testing.T) {
	s := NewState()
	s.SetHistoryLimit(4)
	idx := createServices(t, s, 0, 10)
	if _, err := s.WatchFrom(idx[0], 4); !errors.Is(err, ErrCompacted) {
		t.Fatalf("watch from %d after the history kept 4 events: %v, want ErrCompacted", idx[0], err)
	}
	w, err := s.WatchFrom(idx[6], 4)
	if err != nil {
		t.Fatalf("watch from %d, still held: %v", idx[6], err)
	}
	defer w.Cancel()
	if got := eventIndexes(w.Backlog); fmt.Sprint(got) != fmt.Sprint(idx[7:]) {
		t.Fatalf("backlog %v, want %v", got, idx[7:])
	}
}

// TestWatchCurrentStartsAtTheView: the view and the subscription meet at
// one index, however the writes interleave.
func TestWatchCurrentStartsAtTheView(t *testing.T) {
	s := NewState()
	done := make(chan struct{})
	go func() {
		defer close(done)
		createServices(t, s, 0, 200)
	}()
	w := s.WatchCurrent(1024)
	defer w.Cancel()
	<-done
	seen := map[string]bool{}
	for _, svc := range w.View.Services() {
		seen[svc.ID] = true
	}
	for len(seen) < 200 {
		for _, e := range <-w.Events {
			if e.Index <= w.View.Index() {
				t.Fatalf("event at %d arrived though the view is at %d", e.Index, w.View.Index())
			}
			if seen[e.Service.ID] {
				t.Fatalf("service %s both in the view (index %d) and in an event at %d", e.Service.ID, w.View.Index(), e.Index)
			}
			seen[e.Service.ID] = true
		}
	}
}

// TestRestoreResetsHistory: after a snapshot install nothing before its
// index can be replayed.
func TestRestoreResetsHistory(t *testing.T) {
	s := NewState()
	idx := createServices(t, s, 0, 3)
	s.replace(newDB(), 100)
	if _, err := s.WatchFrom(idx[1], 4); !errors.Is(err, ErrCompacted) {
		t.Fatalf("watch from %d after a restore at 100: %v, want ErrCompacted", idx[1], err)
	}
	if got := s.HistoryFloor(); got != 100 {
		t.Fatalf("floor %d, want 100", got)
	}
}

// TestChangesBetween: Changes gives exactly the changes in (from, to],
// and says so when some of them are forgotten.
func TestChangesBetween(t *testing.T) {
	s := NewState()
	s.SetHistoryLimit(6)
	idx := createServices(t, s, 0, 10)
	for _, tc := range []struct{ from, to int }{{4, 4}, {4, 5}, {4, 9}, {5, 7}} {
		got, err := s.Changes(idx[tc.from], idx[tc.to])
		if err != nil {
			t.Fatalf("changes (%d, %d]: %v", idx[tc.from], idx[tc.to], err)
		}
		if want := idx[tc.from+1 : tc.to+1]; fmt.Sprint(eventIndexes(got)) != fmt.Sprint(want) {
			t.Errorf("changes (%d, %d] = %v, want %v", idx[tc.from], idx[tc.to], eventIndexes(got), want)
		}
	}
	if _, err := s.Changes(idx[1], idx[9]); !errors.Is(err, ErrCompacted) {
		t.Errorf("changes after %d, forgotten: %v, want ErrCompacted", idx[1], err)
	}
}
