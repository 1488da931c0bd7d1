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
	return &changeCache{byKey: make(map[changeKey]*encodedChange, changeCacheEvents)}
}

// get returns ev encoded (convert converts it), encoding it on the first
// call; a concurrent caller for the same change waits for that encoding
// instead of repeating it.
func (c *changeCache) get(ev raftstore.Event, form changeForm, convert func() *shoalpb.WatchChange) ([]byte, error) {
	key := changeKey{index: ev.Index, action: ev.Action, object: eventObject(ev), form: form}
	if c == nil || key.object == nil || !shareChanges.Load() {
		return encodeChange(convert())
	}
	c.mu.Lock()
	e, ok := c.byKey[key]
	if !ok {
		e = &encodedChange{}
		c.add(key, e)
	}
	c.mu.Unlock()
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
