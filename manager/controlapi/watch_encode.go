package controlapi

import (
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// changeCacheEvents is how many encoded changes the cache holds (a task
// with its spec is about 1 KiB). A watcher further behind than this
// encodes the changes again itself: slower, never wrong.
const changeCacheEvents = 8192

// watchChangesField is WatchMessage.changes' field number.
const watchChangesField = 2

// shareChanges turns the cache on (only benchmarks, for a baseline of
// every watcher encoding every change itself, turn it off).
var shareChanges atomic.Bool

func init() { shareChanges.Store(true) }

// changeCache holds each recent change encoded once, for every watcher
// whose filter it passes: without it, 100 watchers of a busy cluster
// converted and marshalled each task with its spec 100 times, and the
// last of them saw a 1,000-replica scale many seconds late. The encoded
// form depends on the change alone (a task's spec version never changes),
// so watchers at different places in the stream share it safely.
type changeCache struct {
	mu    sync.Mutex
	byKey map[changeKey]*encodedChange
	ring  []changeKey // insertion order, oldest at next once full
	next  int
	// batches holds the entries of the recent live batches in batch
	// order, so that a watcher following the state finds a batch's
	// changes with one look-up instead of one per change (100 watchers
	// of a 1,000-replica scale made 600,000, the most of their time).
	batches    map[batchKey][]*encodedChange
	batchRing  []batchKey // oldest first
	batchTotal int        // the changes of the batches held
}

// batchKey names a batch of changes as the state hands it to every
// subscriber (and keeps it in its history): the same slice.
type batchKey struct {
	first *raftstore.Event
	form  changeForm
}

// changeKey names one change: the object after it is a new value for
// every committed change, so with the index and action it is unique.
type changeKey struct {
	index  uint64
	action string
	object any
	form   changeForm // a summary, or a task without its spec, is encoded apart
}

// encodedChange is one WatchChange as it appears inside a WatchMessage:
// field tag, length and bytes, so a message is the concatenation.
type encodedChange struct {
	once sync.Once
	b    []byte
	err  error
}

func newChangeCache() *changeCache {
	return &changeCache{byKey: make(map[changeKey]*encodedChange, changeCacheEvents), batches: map[batchKey][]*encodedChange{}}
}

// get returns ev encoded (convert converts it), encoding it once for
// every caller (see encode).
func (c *changeCache) get(ev raftstore.Event, form changeForm, convert func() *shoalpb.WatchChange) ([]byte, error) {
	if c == nil || !shareChanges.Load() {
		return encodeChange(convert())
	}
	c.mu.Lock()
	e := c.entryLocked(ev, form)
	c.mu.Unlock()
	return e.encode(convert)
}

// batch returns the entries of the changes of a batch the state handed
// its subscribers, in its order (nil: encode each change with get).
func (c *changeCache) batch(events []raftstore.Event, form changeForm) []*encodedChange {
	if c == nil || len(events) == 0 || len(events) > changeCacheEvents || !shareChanges.Load() {
		return nil
	}
	key := batchKey{first: &events[0], form: form}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.batches[key]; ok {
		return b
	}
	b := make([]*encodedChange, len(events))
	for i, ev := range events {
		b[i] = c.entryLocked(ev, form)
	}
	for c.batchTotal+len(b) > changeCacheEvents {
		old := c.batchRing[0]
		c.batchRing = c.batchRing[1:]
		c.batchTotal -= len(c.batches[old])
		delete(c.batches, old)
	}
	c.batches[key], c.batchRing, c.batchTotal = b, append(c.batchRing, key), c.batchTotal+len(b)
	return b
}

// entryLocked returns the entry of ev, adding it when there is none
// (nil for an event of no object, which is never shared); c.mu is held.
func (c *changeCache) entryLocked(ev raftstore.Event, form changeForm) *encodedChange {
	key := changeKey{index: ev.Index, action: ev.Action, object: eventObject(ev), form: form}
	if key.object == nil {
		return nil
	}
	e, ok := c.byKey[key]
	if !ok {
		e = &encodedChange{}
		c.add(key, e)
	}
	return e
}

// encode returns the change encoded, encoding it (convert converts it) on
// the first call; a concurrent caller waits for that encoding instead of
// repeating it. A nil entry is encoded each time.
func (e *encodedChange) encode(convert func() *shoalpb.WatchChange) ([]byte, error) {
	if e == nil {
		return encodeChange(convert())
	}
	e.once.Do(func() { e.b, e.err = encodeChange(convert()) })
	return e.b, e.err
}

// add stores e under key, evicting the oldest entry when full; c.mu is held.
func (c *changeCache) add(key changeKey, e *encodedChange) {
	if len(c.ring) < changeCacheEvents {
		c.ring = append(c.ring, key)
	} else {
		delete(c.byKey, c.ring[c.next])
		c.ring[c.next] = key
		c.next = (c.next + 1) % changeCacheEvents
	}
	c.byKey[key] = e
}

func eventObject(ev raftstore.Event) any {
	switch {
	case ev.Task != nil:
		return ev.Task
	case ev.Service != nil:
		return ev.Service
	case ev.Node != nil:
		return ev.Node
	case ev.Network != nil:
		return ev.Network
	}
	return nil
}

func encodeChange(c *shoalpb.WatchChange) ([]byte, error) {
	body, err := proto.Marshal(c)
	if err != nil {
		return nil, err
	}
	b := protowire.AppendTag(make([]byte, 0, len(body)+8), watchChangesField, protowire.BytesType)
	return append(protowire.AppendVarint(b, uint64(len(body))), body...), nil
}

// withChanges puts the encoded changes into m as its unknown fields: they
// are marshalled as they stand, after the fields that are set, and the
// wire format cannot tell them from a set changes field (a repeated
// field's elements may come anywhere in a message, in order).
func withChanges(m *shoalpb.WatchMessage, changes [][]byte) *shoalpb.WatchMessage {
	if len(changes) == 0 {
		return m
	}
	n := 0
	for _, c := range changes {
		n += len(c)
	}
	raw := make([]byte, 0, n)
	for _, c := range changes {
		raw = append(raw, c...)
	}
	m.ProtoReflect().SetUnknown(raw)
	return m
}
