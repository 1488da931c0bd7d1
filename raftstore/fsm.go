package raftstore

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"
)

// fsm is the Raft state machine over a State. It implements
// raft.BatchingFSM: consecutive committed entries are applied in one
// memdb transaction, which makes bursts of small writes cheaper.
type fsm struct {
	state   *State
	metrics *Metrics // nil: none kept
}

var _ raft.BatchingFSM = (*fsm)(nil)

// Apply applies one committed entry. Its response is a result: the
// command's value and its domain error.
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries in order. An entry that cannot be
// decoded panics: every member would fail on it the same way, and going on
// would let the state drift from the log.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	start := time.Now()
	entries := make([]entry, len(logs))
	for i, l := range logs {
		entries[i].index = l.Index
		if l.Type != raft.LogCommand {
			entries[i].noop = true
			continue
		}
		cmd, err := DecodeCommand(l.Data)
		if err != nil {
			panic(fmt.Sprintf("raftstore: log entry %d (term %d) cannot be decoded: %v", l.Index, l.Term, err))
		}
		entries[i].cmd = cmd
	}
	res := f.state.applyEntries(entries)
	out := make([]any, len(res))
	for i := range res {
		out[i] = res[i]
	}
	f.metrics.observeApply(len(logs), time.Since(start))
	return out
}

// Snapshot captures the state at this point; Persist writes it later while
// the FSM goes on applying.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{view: f.state.Read(), metrics: f.metrics}, nil
}

// Restore replaces the state with the snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	start := time.Now()
	db, index, err := readSnapshot(rc)
	if err != nil {
		return err
	}
	f.state.replace(db, index)
	f.metrics.observeRestore(time.Since(start))
	return nil
}

type fsmSnapshot struct {
	view    *View
	metrics *Metrics
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	w := &countingWriter{w: sink}
	if err := s.view.WriteSnapshot(w); err != nil {
		return errors.Join(err, sink.Cancel())
	}
	if err := sink.Close(); err != nil {
		return err
	}
	s.metrics.observeSnapshot(w.n, time.Since(start))
	return nil
}

func (s *fsmSnapshot) Release() {}
