package controlapi

import (
	"fmt"

	"google.golang.org/grpc/codes"

	"github.com/shoal-sched/shoal/raftstore"
)

// catchUpLive is the most held changes a watch sends with its
// subscription open. A longer backlog is sent from the state's history
// with no subscription, then looked up again from where it ended: the
// per-watcher buffer (watchBuffer) then only has to cover the time to send
// one message, and how far behind a watcher may fall while it catches up
// is bounded by the history (HistoryEvents, shared by all watchers), not
// by how many batches happened to be applied meanwhile.
const catchUpLive = watchChunk

// catchUp brings the client from index from (or raftstore.WatchOldest) to
// the present and returns the subscription that follows on from there. It
// fails with raftstore.ErrCompacted when a change the client has not seen
// is no longer held. The FSM never waits: the history is read under the
// state's lock and sent after.
func (ws *watchStream) catchUp(st *raftstore.State, from uint64) (raftstore.Watch, error) {
	for {
		w, err := st.WatchFrom(from, watchBuffer)
		if err != nil {
			return w, err
		}
		if !ws.sent {
			ws.floor = w.Floor
			if ws.history {
				ws.oldest = oldestTime(w.Backlog)
			}
		}
		live := len(w.Backlog) <= catchUpLive
		if !live {
			w.Cancel()
		}
		// The first message goes out even when nothing passes: it starts
		// the stream and says how far the client is.
		err = ws.sendChanges(st.Read(), w.Backlog, nil, max(w.Index, ws.skip), !ws.sent)
		switch {
		case err != nil:
			w.Cancel()
			return raftstore.Watch{}, err
		case live:
			return w, nil
		}
		from = w.Index
	}
}

// compacted ends a watch whose next change is no longer
// held: the client asked for an index too old, or read the objects or the
// backlog more slowly than the cluster changed.
func (ws *watchStream) compacted(st *raftstore.State, err error) error {
	if !ws.sent {
		ws.floor = st.HistoryFloor()
		return ws.resync(codes.OutOfRange, ws.skip,
			err.Error()+"; watch again without since_index to read the current objects")
	}
	return ws.resync(codes.OutOfRange, ws.last, fmt.Sprintf(
		"%v: the client read the objects or the held changes more slowly than the cluster changed; watch again without since_index to read the current objects",
		err))
}
