package raftstore

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// HistoryEvents is how many events the state keeps of its recent changes,
// so that a watcher that lost its stream can resume from the last index it
// saw instead of reading every object again.
//
// A task event holds a version of the task the store may have replaced,
// about 1 KiB, so the bound keeps the history within some tens of MiB;
// 16,384 events cover the whole rollout of a few thousand replicas.
const HistoryEvents = 16384

// ErrCompacted: the changes after the index asked for are no longer held;
// the caller reads the current objects again (a resync).
var ErrCompacted = errors.New("the changes after this index are no longer held")

// history is a bounded record of the latest event batches, oldest first.
// Every change with an index above floor is in it.
type history struct {
	batches [][]Event
	events  int
	max     int
	floor   uint64
}

// add records one published batch and forgets the oldest ones beyond max.
func (h *history) add(events []Event) {
	h.batches = append(h.batches, events)
	h.events += len(events)
	for h.events > h.max && len(h.batches) > 1 {
		old := h.batches[0]
		h.batches[0] = nil
		h.batches = h.batches[1:]
		h.events -= len(old)
		h.floor = old[len(old)-1].Index
	}
}

// reset forgets everything: the state was replaced at index.
func (h *history) reset(index uint64) {
	clear(h.batches)
	h.batches, h.events, h.floor = h.batches[:0], 0, index
}

// after returns the held events with an index above from, in order.
func (h *history) after(from uint64) []Event { return h.between(from, ^uint64(0)) }

// between returns the held events with an index in (from, to], in order.
// Batches are held in index order: the first one past from is found by a
// binary search, as a caller that follows the state closely asks for the
// last few of thousands.
func (h *history) between(from, to uint64) []Event {
	var out []Event
	i, _ := slices.BinarySearchFunc(h.batches, from, func(b []Event, from uint64) int {
		return cmp.Compare(b[len(b)-1].Index, from+1)
	})
	for _, b := range h.batches[i:] {
		if b[0].Index > to {
			break
		}
		for _, e := range b {
			if e.Index > from && e.Index <= to {
				out = append(out, e)
			}
		}
	}
	return out
}

// Watch is a subscription that starts at a known point: Backlog holds the
// changes between the index the watcher asked for and the subscription
// (or View holds the whole state at it), and Events every change after.
type Watch struct {
	// View is the state the subscription starts from (WatchCurrent).
	View *View
	// Backlog are the held changes after the index asked for (WatchFrom).
	Backlog []Event
	// Floor is the history's floor at the subscription: every change
	// after it was held.
	Floor uint64
	// Index is the state's index at the subscription: Events carries the
	// changes after it.
	Index uint64
	// Events, Cancel: as Subscribe's. Batches may repeat nothing of the
	// backlog or view: the subscription starts exactly after them.
	Events <-chan []Event
	Cancel func()
}

// WatchCurrent subscribes together with a view of the state: every change
// after View.Index() arrives on Events, none before.
func (s *State) WatchCurrent(buf int) Watch {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := Watch{View: &View{txn: s.db.Txn(false), index: s.index}, Index: s.index, Floor: s.hist.floor}
	w.Events, w.Cancel = s.subscribeLocked(buf)
	return w
}

// ReadFloor is Read together with the history's floor at that view: a
// watcher that reads the view and then calls WatchFrom(view.Index()) sees
// every change after it, or ErrCompacted when it read too slowly for the
// history to hold them.
func (s *State) ReadFloor() (*View, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &View{txn: s.db.Txn(false), index: s.index}, s.hist.floor
}

// WatchOldest, given to WatchFrom, starts from the oldest change held.
const WatchOldest = ^uint64(0)

// WatchFrom subscribes from index from (or WatchOldest): Backlog holds the held changes
// after it, Events the later ones. It fails with ErrCompacted when some
// change after from is no longer held. from may lie ahead of this state
// (a watcher that saw more on another manager): the caller then skips the
// events up to from.
func (s *State) WatchFrom(from uint64, buf int) (Watch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if from == WatchOldest {
		from = s.hist.floor
	}
	if from < s.hist.floor {
		return Watch{}, fmt.Errorf("index %d: %w (the oldest change held follows index %d)", from, ErrCompacted, s.hist.floor)
	}
	w := Watch{Backlog: s.hist.after(from), Index: s.index, Floor: s.hist.floor}
	w.Events, w.Cancel = s.subscribeLocked(buf)
	return w, nil
}

// Changes returns the changes with an index in (from, to], in order: what
// brings a copy of some objects made at index from up to a view at index
// to. It fails with ErrCompacted when some of them are no longer held (or
// the state was replaced since from).
func (s *State) Changes(from, to uint64) ([]Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if from < s.hist.floor {
		return nil, fmt.Errorf("index %d: %w (the oldest change held follows index %d)", from, ErrCompacted, s.hist.floor)
	}
	return s.hist.between(from, to), nil
}

// HistoryFloor is the index after which every change is held.
func (s *State) HistoryFloor() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.hist.floor
}

// SetHistoryLimit changes how many events the history keeps (tests and
// benchmarks; the default is HistoryEvents).
func (s *State) SetHistoryLimit(events int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hist.max = max(events, 1)
}
