package controlapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

const (
	// watchBuffer is how many batches of changes (one per applied group
	// of log entries) a watcher may fall behind before the state drops
	// it. The FSM never waits for a watcher.
	watchBuffer = 256
	// watchChunk bounds the changes of one message (about 1 KiB a task),
	// far below the message limit.
	watchChunk = 512
	// minIndexPoll is how often a wait for min_index looks again when no
	// change wakes it (Raft's own entries advance the index silently).
	minIndexPoll = 50 * time.Millisecond
)

// Watch serves a WatchRequest from this manager's own state (see the
// proto for the contract).
func (s *Server) Watch(req *shoalpb.WatchRequest, stream grpc.ServerStreamingServer[shoalpb.WatchMessage]) error {
	f, err := parseSelectors(req.GetSelectors())
	var win timeWindow
	if err == nil {
		win, err = parseWindow(req)
	}
	var form changeForm
	if err == nil {
		form, err = watchForm(req)
	}
	if err != nil {
		return toStatus(err)
	}
	ctx := stream.Context()
	st := s.state()
	if err := waitApplied(ctx, st, req.GetMinIndex()); err != nil {
		return err
	}
	ws := &watchStream{stream: stream, filter: f, form: form, window: win,
		history: req.GetHistory(), skip: req.GetSinceIndex(), cache: s.changes}
	var from uint64
	switch {
	case req.GetHistory():
		from, ws.skip = raftstore.WatchOldest, 0
	case req.GetSinceIndex() > 0:
		from = req.GetSinceIndex()
	default:
		// The current objects go out before the subscription opens: a
		// client may take many seconds to read a large cluster's, and
		// the changes meanwhile are in the state's history, not in its
		// own bounded buffer (which would drop it before it had begun).
		v, floor := st.ReadFloor()
		ws.floor = floor
		if err := ws.sendSnapshot(v); err != nil {
			return err
		}
		from = v.Index()
	}
	w, err := ws.catchUp(st, from)
	if errors.Is(err, raftstore.ErrCompacted) {
		return ws.compacted(st, err)
	}
	if err != nil {
		return err
	}
	defer w.Cancel()
	return ws.follow(ctx, st, w.Events)
}

// waitApplied waits until the state has applied index.
func waitApplied(ctx context.Context, st *raftstore.State, index uint64) error {
	for {
		ch := st.Changed()
		if st.Read().Index() >= index {
			return nil
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-ch:
		case <-time.After(minIndexPoll):
		}
	}
}

// watchStream is one Watch call being served.
type watchStream struct {
	stream  grpc.ServerStreamingServer[shoalpb.WatchMessage]
	filter  watchFilter
	form    changeForm
	window  timeWindow
	cache   *changeCache // the changes encoded once for all watchers
	history bool         // the watch began with the oldest change held
	floor   uint64
	oldest  *timestamppb.Timestamp // the oldest change held (history)
	skip    uint64                 // the client has seen the changes up to this index
	last    uint64                 // the index the client has been brought to
	sent    bool                   // a message went out (the first carries the floor)
	// specsSent: the specs this stream has sent (specs_once); lastSpec
	// is the last one sent or found there, which the next task most
	// likely runs too.
	specsSent map[specKey]struct{}
	lastSpec  specKey
}

// follow sends the changes of each batch until the client leaves, the
// until_time passes or the state drops the subscription.
func (ws *watchStream) follow(ctx context.Context, st *raftstore.State, events <-chan []raftstore.Event) error {
	until, stop := ws.window.timer()
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-until:
			return nil
		case batch, ok := <-events:
			if !ok {
				return ws.resync(codes.ResourceExhausted, ws.last, fmt.Sprintf(
					"the watch fell more than %d batches of changes behind (the client read too slowly) or this manager installed a snapshot; watch again with since_index %d",
					watchBuffer, max(ws.last, ws.skip)))
			}
			if len(batch) == 0 {
				continue
			}
			if err := ws.sendChanges(st.Read(), batch, ws.cache.batch(batch, ws.form), batch[len(batch)-1].Index, false); err != nil {
				return err
			}
		}
	}
}

// sendChanges sends the events that pass the filter and are newer than
// what the client has, in chunks; the last chunk brings it to upTo.
// always sends a message even when nothing passes (the stream's start).
// shared, when set, holds the shared encodings of events, in order (a
// live batch's); otherwise each is looked up in the cache.
func (ws *watchStream) sendChanges(v *raftstore.View, events []raftstore.Event, shared []*encodedChange, upTo uint64, always bool) error {
	var chunk [][]byte
	for i, ev := range events {
		if ev.Index <= ws.skip || !ws.filter.match(ev, v) || !ws.window.pass(ev, !always) {
			continue
		}
		if sc := ws.specChange(v, ev); sc != nil {
			b, err := encodeChange(sc)
			if err != nil {
				return err
			}
			chunk = append(chunk, b)
		}
		convert := func() *shoalpb.WatchChange { return ws.change(v, ev) }
		var b []byte
		var err error
		if shared != nil {
			b, err = shared[i].encode(convert)
		} else {
			b, err = ws.cache.get(ev, ws.form, convert)
		}
		if err != nil {
			return err
		}
		chunk = append(chunk, b)
		if len(chunk) >= watchChunk {
			if err := ws.send(withChanges(&shoalpb.WatchMessage{Index: ev.Index}, chunk)); err != nil {
				return err
			}
			chunk = nil
		}
	}
	if len(chunk) == 0 && !always {
		ws.last = max(ws.last, upTo)
		return nil
	}
	return ws.send(withChanges(&shoalpb.WatchMessage{Index: max(upTo, ws.last)}, chunk))
}

// sendSnapshot sends the objects of v that pass the filter. They are
// converted for this watcher alone: watchers start at different indexes,
// and a large cluster's objects would push every live change out of the
// cache.
func (ws *watchStream) sendSnapshot(v *raftstore.View) error {
	var chunk []*shoalpb.WatchChange
	flush := func(done bool) error {
		err := ws.send(&shoalpb.WatchMessage{Index: v.Index(), Changes: chunk, Snapshot: true, SnapshotDone: done})
		chunk = nil
		return err
	}
	add := func(ev raftstore.Event) error {
		ev.Index, ev.Action = v.Index(), "current"
		if !ws.filter.match(ev, v) || !ws.window.pass(ev, false) {
			return nil
		}
		if sc := ws.specChange(v, ev); sc != nil {
			chunk = append(chunk, sc)
		}
		chunk = append(chunk, ws.change(v, ev))
		if len(chunk) < watchChunk {
			return nil
		}
		return flush(false)
	}
	var err error
	for _, x := range v.Services() {
		err = errors.Join(err, add(raftstore.Event{Kind: "service", Service: x}))
	}
	for _, x := range v.Nodes() {
		err = errors.Join(err, add(raftstore.Event{Kind: "node", Node: x}))
	}
	for _, x := range v.Networks() {
		err = errors.Join(err, add(raftstore.Event{Kind: "network", Network: x}))
	}
	for _, x := range v.Tasks() {
		if err != nil {
			return err
		}
		err = add(raftstore.Event{Kind: "task", Task: x})
	}
	if err != nil {
		return err
	}
	return flush(true)
}

func (ws *watchStream) send(m *shoalpb.WatchMessage) error {
	if !ws.sent {
		m.HistoryFloor, m.HistoryOldestTime = ws.floor, ws.oldest
	}
	ws.sent = true
	ws.last = max(ws.last, m.GetIndex())
	return ws.stream.Send(m)
}

// resync sends the message that ends a watch which cannot go on, and
// returns the status the call ends with.
func (ws *watchStream) resync(code codes.Code, index uint64, reason string) error {
	err := ws.send(&shoalpb.WatchMessage{Index: index, ResyncRequired: true, ResyncReason: reason})
	if err != nil {
		return err
	}
	return status.Error(code, reason)
}

// change converts one event; a task carries the spec it runs unless the
// stream sends specs once.
func (ws *watchStream) change(v *raftstore.View, ev raftstore.Event) *shoalpb.WatchChange {
	c := &shoalpb.WatchChange{Index: ev.Index, Kind: ev.Kind, Action: ev.Action}
	if ws.form == formSummaries {
		c.Event = toEvent(ev)
		return c
	}
	switch {
	case ev.Service != nil:
		c.Service = shoalpb.FromService(ev.Service)
	case ev.Task != nil && ws.form == formNoSpecs:
		c.Task = shoalpb.FromTaskWithSpec(ev.Task, nil)
	case ev.Task != nil:
		c.Task = shoalpb.FromTaskWithSpec(ev.Task, v.ServiceSpec(ev.Task.ServiceID, ev.Task.SpecVersion))
	case ev.Node != nil:
		c.Node = shoalpb.FromNode(ev.Node)
	case ev.Network != nil:
		c.Network = shoalpb.FromNetwork(ev.Network)
	}
	return c
}
