package controlapi

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// timeWindow is the since_time/until_time of a watch: only the changes
// whose event time lies in it pass (zero ends: open).
type timeWindow struct {
	since, until time.Time
}

func parseWindow(req *shoalpb.WatchRequest) (timeWindow, error) {
	var w timeWindow
	for _, f := range []struct {
		name string
		ts   *timestamppb.Timestamp
		to   *time.Time
	}{{"since_time", req.GetSinceTime(), &w.since}, {"until_time", req.GetUntilTime(), &w.until}} {
		if f.ts == nil {
			continue
		}
		if err := f.ts.CheckValid(); err != nil {
			return w, invalidf("%s: %v", f.name, err)
		}
		*f.to = f.ts.AsTime()
	}
	if !w.since.IsZero() && !w.until.IsZero() && w.since.After(w.until) {
		return w, invalidf("since_time %s is after until_time %s: want since_time at or before until_time",
			w.since.UTC().Format(time.RFC3339Nano), w.until.UTC().Format(time.RFC3339Nano))
	}
	return w, nil
}

func (w timeWindow) open() bool { return w.since.IsZero() && w.until.IsZero() }

// pass tells whether ev lies in the window. A change without a time of its
// own (a network's) passes only when it is live: it happens now.
func (w timeWindow) pass(ev raftstore.Event, live bool) bool {
	if w.open() {
		return true
	}
	ts := toEvent(ev).GetTime()
	if ts == nil {
		return live && (w.until.IsZero() || time.Now().Before(w.until))
	}
	at := ts.AsTime()
	return (w.since.IsZero() || !at.Before(w.since)) && (w.until.IsZero() || !at.After(w.until))
}

// timer fires when until_time passes (never without one).
func (w timeWindow) timer() (<-chan time.Time, func()) {
	if w.until.IsZero() {
		return nil, func() {}
	}
	t := time.NewTimer(time.Until(w.until))
	return t.C, func() { t.Stop() }
}

// oldestTime is the time of the oldest change of a history backlog, for
// the first message.
func oldestTime(backlog []raftstore.Event) *timestamppb.Timestamp {
	for _, ev := range backlog {
		if ts := toEvent(ev).GetTime(); ts != nil {
			return ts
		}
	}
	return nil
}
