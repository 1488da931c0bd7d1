package raftstore

import (
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/go-memdb"
	"github.com/shoal-sched/shoal/api"
)

// State is the indexed in-memory state. Reads take a consistent view.
//
// Every change goes through apply, one command at a time; stored values are
// never mutated after insert (a change inserts a modified clone), so a View
// can hand out pointers without copying.
type State struct {
	applyMu sync.Mutex // serialises apply and restore

	mu      sync.RWMutex // guards the fields below
	db      *memdb.MemDB
	index   uint64
	changed chan struct{}
	subs    map[uint64]chan []Event
	nextSub uint64
	hist    history
}

// NewState returns an empty state.
func NewState() *State {
	return &State{
		db:      newDB(),
		changed: make(chan struct{}),
		subs:    make(map[uint64]chan []Event),
		hist:    history{max: HistoryEvents},
	}
}

// Read returns a consistent, read-only view of the state at one index.
func (s *State) Read() *View {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &View{txn: s.db.Txn(false), index: s.index}
}

// Changed returns a channel closed at the next change of the state.
// Typical use: ch := s.Changed(); v := s.Read(); …; <-ch.
func (s *State) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// Subscribe streams events of every applied command. cancel stops it. A
// subscriber that falls more than buf batches behind is dropped (its
// channel closed), never blocking Apply. A Restore (snapshot install) also
// closes every subscriber's channel: the history it would have to replay is
// not known, so the subscriber re-reads the state and subscribes again.
func (s *State) Subscribe(buf int) (events <-chan []Event, cancel func()) {
	if buf < 1 {
		buf = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subscribeLocked(buf)
}

// subscribeLocked registers a subscriber; s.mu must be held for writing.
func (s *State) subscribeLocked(buf int) (events <-chan []Event, cancel func()) {
	if buf < 1 {
		buf = 1
	}
	ch := make(chan []Event, buf)
	id := s.nextSub
	s.nextSub++
	s.subs[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if c, ok := s.subs[id]; ok {
				delete(s.subs, id)
				close(c)
			}
		})
	}
}

// commitLocked publishes the end of one applied command: the new index,
// the Changed signal and the events. s.mu must be held for writing.
func (s *State) commitLocked(index uint64, changed bool, events []Event) {
	s.index = index
	if !changed {
		return
	}
	close(s.changed)
	s.changed = make(chan struct{})
	if len(events) == 0 {
		return
	}
	s.hist.add(events)
	for id, ch := range s.subs {
		select {
		case ch <- events:
		default:
			// Too far behind: drop it rather than block the FSM.
			delete(s.subs, id)
			close(ch)
		}
	}
}

// apply runs cmd against the state as log entry index (0: the next index
// after the current one) and returns the command's result. A domain
// rejection is returned as an error and leaves the state as it was.
func (s *State) apply(index uint64, cmd Command) (uint64, any, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if index == 0 {
		s.mu.RLock()
		index = s.index + 1
		s.mu.RUnlock()
	}
	res := s.applyLocked([]entry{{index: index, cmd: cmd}})
	if res[0].firstIndex != 0 {
		index = res[0].firstIndex
	}
	return index, res[0].value, res[0].err
}

// entry is one log entry to apply. A noop entry (Raft's own entries:
// configuration changes, leader no-ops) only advances the index.
type entry struct {
	index uint64
	cmd   Command
	noop  bool
}

// result is the outcome of one entry: what the FSM hands back to Raft.
// firstIndex is set when the entry repeated a Request: the index of the
// entry that applied it.
type result struct {
	value      any
	err        error
	firstIndex uint64
}

// applyEntries applies consecutive log entries in one transaction.
func (s *State) applyEntries(entries []entry) []result {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	return s.applyLocked(entries)
}

// applyLocked applies entries in one write transaction, published at once.
// Handlers write nothing when they reject a command, so one shared
// transaction still leaves each rejection without effect. The index
// advances for every entry, rejected or not; Changed fires and events go
// out only when the state changed. s.applyMu must be held.
func (s *State) applyLocked(entries []entry) []result {
	out := make([]result, len(entries))
	if len(entries) == 0 {
		return out
	}
	t := newTx(s.db)
	for i, e := range entries {
		if e.noop {
			continue
		}
		t.index = e.index
		out[i] = t.applyEntry(e.cmd)
	}
	if !t.dirty {
		t.txn.Abort()
	}
	s.mu.Lock()
	if t.dirty {
		t.txn.Commit()
	}
	s.commitLocked(entries[len(entries)-1].index, t.dirty, t.events)
	s.mu.Unlock()
	return out
}

// replace swaps in a freshly built database (snapshot restore).
func (s *State) replace(db *memdb.MemDB, index uint64) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.db = db
	s.hist.reset(index)
	for id, ch := range s.subs {
		delete(s.subs, id)
		close(ch)
	}
	s.commitLocked(index, true, nil)
}

// tx is one or more commands being applied: the write transaction and
// what it produced. Handlers check everything before they write, so a
// rejection never leaves a partial change behind (entries applied together
// share the transaction).
//
// Lookups by id do not go through the write transaction: memdb answers a
// read of an index modified in a write transaction from a clone, and
// cloning drops the transaction's cache of writable radix nodes, so that
// every following insert copies its whole path again (a 10,000-task
// AssignTasks, which reads each task before writing it, took three times
// as long). They read the state as it was before the transaction, under
// an overlay of the objects this transaction wrote.
type tx struct {
	txn     *memdb.Txn
	base    *memdb.Txn
	written map[string]map[string]any // table → id → object (nil: deleted)
	// boundHere lists, by node, the tasks this transaction bound to that
	// node (see tasksOnNode).
	boundHere map[string][]string
	index     uint64
	events    []Event
	dirty     bool
	// seqs: the requests table by seq, for remember (nil until its first
	// use).
	seqs *requestSeqs
	// namesHere maps the folded names of the services this transaction
	// wrote to them (nil: removed), for serviceNamed.
	namesHere map[string]*api.Service
}

func newTx(db *memdb.MemDB) *tx {
	return &tx{base: db.Txn(false), txn: db.Txn(true), written: make(map[string]map[string]any),
		boundHere: make(map[string][]string)}
}

func (t *tx) insert(table string, obj any) {
	if err := t.txn.Insert(table, obj); err != nil {
		panic(fmt.Sprintf("raftstore: insert into %s: %v", table, err))
	}
	t.record(table, obj, obj)
}

func (t *tx) remove(table string, obj any) {
	if err := t.txn.Delete(table, obj); err != nil {
		panic(fmt.Sprintf("raftstore: delete from %s: %v", table, err))
	}
	t.record(table, obj, nil)
}

// record notes what this transaction wrote under obj's id.
func (t *tx) record(table string, obj, now any) {
	m := t.written[table]
	if m == nil {
		m = make(map[string]any)
		t.written[table] = m
	}
	id := objectID(obj)
	if svc, ok := obj.(*api.Service); ok && table == tableServices {
		if t.namesHere == nil {
			t.namesHere = make(map[string]*api.Service)
		}
		now, _ := now.(*api.Service)
		t.namesHere[strings.ToLower(svc.Spec.Name)] = now
	}
	if task, ok := now.(*api.Task); ok && task.NodeID != "" {
		// A task's node is set once: note the task under it at its first
		// write with a node.
		if prev, _ := m[id].(*api.Task); prev == nil || prev.NodeID != task.NodeID {
			t.boundHere[task.NodeID] = append(t.boundHere[task.NodeID], id)
		}
	}
	m[id] = now
	t.dirty = true
}

// first returns the object whose index equals key, or nil.
func (t *tx) first(table, index, key string) any {
	from := t.txn
	if index == "id" {
		if obj, ok := t.written[table][key]; ok {
			return obj
		}
		from = t.base
	}
	obj, err := from.First(table, index, key)
	if err != nil {
		panic(fmt.Sprintf("raftstore: read %s.%s: %v", table, index, err))
	}
	return obj
}

func (t *tx) event(kind, action string, e Event) {
	e.Index, e.Kind, e.Action = t.index, kind, action
	t.events = append(t.events, e)
}
