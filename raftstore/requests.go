package raftstore

import (
	"encoding/binary"
	"fmt"

	"github.com/hashicorp/go-memdb"
	"github.com/shoal-sched/shoal/raftstore/commandpb"
)

const (
	// MaxRequestIDLength bounds a request ID (a Request's ID) in bytes.
	MaxRequestIDLength = 128
	// RequestMemory is how many request IDs the state remembers: those of
	// the last RequestMemory requests that succeeded. A client retries a
	// write within seconds of its first attempt; control writes come at
	// most a few thousand a second, so that is more than the retry window.
	RequestMemory = 10_000
	// requestValues is how many of the newest remembered requests keep
	// their first result's value; older ones keep the index alone, as
	// after a restore. A value is often an object the store has replaced
	// since (a service before its next update): keeping all of them would
	// hold up to RequestMemory old specs in memory.
	requestValues = 1_000
)

// tableRequests holds the remembered requests (appliedRequest).
const tableRequests = "requests"

// appliedRequest is what the state remembers of one request that
// succeeded. Seq numbers the remembered requests 1, 2, 3… in the order
// they were applied; the oldest are forgotten first.
type appliedRequest struct {
	ID    string      `json:"id"`
	Seq   uint64      `json:"seq"`
	Type  CommandType `json:"type"`
	Index uint64      `json:"index"`
	// Value is the first result's value. It is not written to snapshots:
	// after a restore a repeated request is answered with the index alone
	// (callers read the object from the state then).
	Value any `json:"-"`
}

// requestsTable is the schema of tableRequests.
func requestsTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableRequests, Indexes: map[string]*memdb.IndexSchema{
		"id":  idIndex(func(o any) string { return o.(*appliedRequest).ID }),
		"seq": {Name: "seq", Unique: true, Indexer: seqIndex{}},
	}}
}

// seqIndex indexes appliedRequest.Seq big-endian, so that the index order
// is the numeric order.
type seqIndex struct{}

func (seqIndex) FromObject(obj any) (bool, []byte, error) {
	return true, binary.BigEndian.AppendUint64(nil, obj.(*appliedRequest).Seq), nil
}

func (seqIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("seq index wants one argument, got %d", len(args))
	}
	n, ok := args[0].(uint64)
	if !ok {
		return nil, fmt.Errorf("seq index argument %v: want a uint64", args[0])
	}
	return binary.BigEndian.AppendUint64(nil, n), nil
}

// checkRequest refuses a Request the FSM would not know how to answer.
func checkRequest(r Request) error {
	switch {
	case r.ID == "":
		return fmt.Errorf("request id: empty: %w", ErrInvalid)
	case len(r.ID) > MaxRequestIDLength:
		return fmt.Errorf("request id %.16q…: %d bytes, longer than %d: %w", r.ID, len(r.ID), MaxRequestIDLength, ErrInvalid)
	}
	switch deref(r.Command).(type) {
	case nil:
		return fmt.Errorf("request %q: command: nil: %w", r.ID, ErrInvalid)
	case Batch, Request:
		return fmt.Errorf("request %q: command %T: a request carries one plain command: %w", r.ID, r.Command, ErrInvalid)
	}
	return nil
}

// requestEnvelope is the inner command's envelope with the request ID set.
func requestEnvelope(r Request, depth int) (*commandpb.Envelope, error) {
	if err := checkRequest(r); err != nil {
		return nil, err
	}
	env, err := envelope(r.Command, depth)
	if err != nil {
		return nil, fmt.Errorf("request %q: %w", r.ID, err)
	}
	env.RequestId = r.ID
	return env, nil
}

// requestFromEnvelope reads an envelope that carries a request ID.
func requestFromEnvelope(env *commandpb.Envelope, depth int) (Command, error) {
	inner := &commandpb.Envelope{Type: env.Type, Encoding: env.Encoding, Payload: env.Payload}
	if env.Type == commandpb.CommandType_BATCH || len(env.Batch) > 0 {
		return nil, fmt.Errorf("request %q: a batch cannot carry a request id", env.RequestId)
	}
	cmd, err := fromEnvelope(inner, depth)
	if err != nil {
		return nil, fmt.Errorf("request %q: %w", env.RequestId, err)
	}
	r := Request{ID: env.RequestId, Command: cmd}
	if err := checkRequest(r); err != nil {
		return nil, err
	}
	return r, nil
}

// applyRequest applies r.Command once per request ID. A repeat is answered
// with the first result and the index of the entry that applied it. A
// repeat that carries another kind of command is refused: the ID was
// reused by mistake, and the first result would not answer it.
func (t *tx) applyRequest(r Request) (value any, firstIndex uint64, err error) {
	if err := checkRequest(r); err != nil {
		return nil, 0, err
	}
	typ := r.commandType()
	if prev, ok := t.first(tableRequests, "id", r.ID).(*appliedRequest); ok {
		if prev.Type != typ {
			return nil, 0, fmt.Errorf("request id %q: already used by a %s command at index %d, cannot answer a %s command: %w",
				r.ID, commandpb.CommandType(prev.Type), prev.Index, commandpb.CommandType(typ), ErrInvalid)
		}
		return prev.Value, prev.Index, nil
	}
	value, err = t.apply(r.Command)
	if err != nil {
		return nil, 0, err
	}
	t.remember(&appliedRequest{ID: r.ID, Type: typ, Index: t.index, Value: value})
	return value, 0, nil
}

// remember stores rec as the newest request, drops the value of the one
// that leaves the newest requestValues and forgets the oldest ones beyond
// RequestMemory. It depends only on the log: the sequence numbers come
// from the state itself. It finds records by seq through t.seqs, never
// through the write transaction (see tx): three reads of the modified seq
// index per request made every request of a batch copy its paths again.
func (t *tx) remember(rec *appliedRequest) {
	c := t.requestSeqs()
	rec.Seq = c.newest + 1
	t.putRequest(rec)
	if rec.Seq > requestValues {
		if o := t.requestBySeq(rec.Seq - requestValues); o != nil && o.Value != nil {
			bare := *o
			bare.Value = nil
			t.putRequest(&bare)
		}
	}
	for {
		o := t.oldestRequest()
		if o == nil || rec.Seq-o.Seq < RequestMemory {
			return
		}
		t.remove(tableRequests, o)
		c.oldest = o.Seq + 1
	}
}

// requestSeqs is what a transaction knows of the remembered requests by
// seq: the seqs below oldest are forgotten (or were never used), those up
// to newest are remembered, and here holds the records this transaction
// wrote. Records it did not write are read from before it (tx.base).
type requestSeqs struct {
	oldest, newest uint64
	// baseNewest is the newest seq before the transaction: a seq above it
	// is one this transaction added.
	baseNewest uint64
	here       map[uint64]*appliedRequest
}

// requestSeqs loads t.seqs from the state before the transaction at its
// first use.
func (t *tx) requestSeqs() *requestSeqs {
	if t.seqs != nil {
		return t.seqs
	}
	c := &requestSeqs{here: make(map[uint64]*appliedRequest)}
	if o, ok := t.baseFirst(tableRequests, "seq").(*appliedRequest); ok {
		c.oldest = o.Seq
	}
	if o, ok := lastOf(t.base, tableRequests, "seq").(*appliedRequest); ok {
		c.newest, c.baseNewest = o.Seq, o.Seq
	}
	t.seqs = c
	return c
}

// putRequest writes rec, new or replacing the record of its seq.
func (t *tx) putRequest(rec *appliedRequest) {
	c := t.requestSeqs()
	t.insert(tableRequests, rec)
	c.here[rec.Seq] = rec
	if rec.Seq > c.newest {
		c.newest = rec.Seq
	}
	if c.oldest == 0 {
		c.oldest = rec.Seq
	}
}

// requestBySeq returns the remembered request with seq, or nil.
func (t *tx) requestBySeq(seq uint64) *appliedRequest {
	c := t.requestSeqs()
	if seq < c.oldest || seq > c.newest {
		return nil
	}
	if rec, ok := c.here[seq]; ok {
		return rec
	}
	rec, _ := t.baseFirst(tableRequests, "seq", seq).(*appliedRequest)
	return rec
}

// oldestRequest returns the remembered request with the lowest seq, or
// nil. Seqs are handed out one after the other and forgotten from the
// oldest, so there is no gap; should a state have one, the lowest seq at
// or above c.oldest is found all the same.
func (t *tx) oldestRequest() *appliedRequest {
	c := t.requestSeqs()
	if c.oldest == 0 || c.oldest > c.newest {
		return nil
	}
	if rec := t.requestBySeq(c.oldest); rec != nil {
		return rec
	}
	if c.oldest <= c.baseNewest {
		it, err := t.base.LowerBound(tableRequests, "seq", c.oldest)
		if err != nil {
			panic(fmt.Sprintf("raftstore: read %s.seq: %v", tableRequests, err))
		}
		if rec, ok := it.Next().(*appliedRequest); ok {
			return t.requestBySeq(rec.Seq)
		}
	}
	// Every seq this transaction added is in c.here, from baseNewest+1 on.
	return c.here[c.baseNewest+1]
}

// baseFirst reads the state as it was before the transaction.
func (t *tx) baseFirst(table, index string, args ...any) any {
	obj, err := t.base.First(table, index, args...)
	if err != nil {
		panic(fmt.Sprintf("raftstore: read %s.%s: %v", table, index, err))
	}
	return obj
}

func lastOf(txn *memdb.Txn, table, index string) any {
	obj, err := txn.Last(table, index)
	if err != nil {
		panic(fmt.Sprintf("raftstore: read %s.%s: %v", table, index, err))
	}
	return obj
}

// Request returns the first answer to the request with id if the state
// remembers it: the index that applied it and its value (nil after a
// snapshot restore). A handler that must look objects up before it can
// build its command asks this first, so that a retry of a request that
// removed its object is answered rather than refused as not found.
func (v *View) Request(id string) (Response, bool) {
	rec, ok := v.first(tableRequests, "id", id).(*appliedRequest)
	if !ok {
		return Response{}, false
	}
	return Response{Index: rec.Index, Value: rec.Value}, true
}

// requests returns the remembered requests, oldest first.
func (v *View) requests() []*appliedRequest {
	return collect[*appliedRequest](v.get(tableRequests, "seq"))
}
