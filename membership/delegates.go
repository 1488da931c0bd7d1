package membership

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// EventType says what happened to a member.
type EventType int

const (
	// EventJoin: a member became alive (for the first time, or again after
	// it was declared dead).
	EventJoin EventType = iota + 1
	// EventUpdate: a live member changed its metadata.
	EventUpdate
	// EventLeave: a member left on purpose (it set Meta.Leaving first).
	EventLeave
	// EventFail: a member was declared dead without announcing a leave.
	EventFail
)

func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventUpdate:
		return "update"
	case EventLeave:
		return "leave"
	case EventFail:
		return "fail"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event reports a change of one member, this one included.
type Event struct {
	Type EventType
	// Meta is the member's metadata; for Leave and Fail, the last accepted.
	Meta Meta
	// Addr is the member's gossip address (host:port).
	Addr string
}

// View is one member's picture of the cluster at one moment: who is alive,
// and who was declared dead or left and has not come back since. It is
// what a new leader acts on, instead of the events it did not follow.
type View struct {
	// Alive are the live members with accepted metadata, by node ID (as
	// Members).
	Alive []Meta
	// Gone are the members that failed or left, by node ID.
	Gone []Departure
}

// Departure is a member that failed or left.
type Departure struct {
	// Meta is the member's last accepted metadata.
	Meta Meta
	Addr string
	// Left: it left on purpose (EventLeave); else it was declared dead.
	Left bool
	// At is when this member learnt of it (its own clock).
	At time.Time
}

// maxGone bounds the departures a View remembers.
const maxGone = 4096

// delegates holds one small adapter per memberlist callback interface.
type delegates struct {
	meta     *metaDelegate
	events   *eventDelegate
	conflict *conflictDelegate
}

// metaDelegate hands memberlist our encoded metadata. Only NodeMeta matters:
// shoal sends no user messages and no push/pull state through gossip.
type metaDelegate struct {
	log     *slog.Logger
	mu      sync.RWMutex
	encoded []byte
}

func (d *metaDelegate) set(b []byte) {
	d.mu.Lock()
	d.encoded = b
	d.mu.Unlock()
}

func (d *metaDelegate) NodeMeta(limit int) []byte {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if len(d.encoded) > limit {
		// EncodeMeta already refuses anything over MetaMaxSize, which is
		// the limit memberlist passes; memberlist would panic on more.
		d.log.Error("metadata over memberlist's limit, advertising none", "size", len(d.encoded), "limit", limit)
		return nil
	}
	return d.encoded
}

func (d *metaDelegate) NotifyMsg([]byte)                           {}
func (d *metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *metaDelegate) LocalState(join bool) []byte                { return nil }
func (d *metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

// conflictDelegate reports two nodes claiming one name: memberlist keeps the
// first and ignores the other, which an operator must fix.
type conflictDelegate struct {
	log *slog.Logger
}

func (d *conflictDelegate) NotifyConflict(existing, other *memberlist.Node) {
	d.log.Warn("two nodes claim one node id; ignoring the newer",
		"node_id", existing.Name, "addr", existing.Address(), "other_addr", other.Address())
}

type peer struct {
	meta Meta
	addr string
}

// eventDelegate turns memberlist's callbacks into Events and keeps the
// table of live members with accepted metadata. memberlist calls it with
// its node lock held, so it must never block: the channel send is
// non-blocking and overflow is counted.
type eventDelegate struct {
	log     *slog.Logger
	badMeta atomic.Uint64
	dropped atomic.Uint64

	mu    sync.Mutex
	peers map[string]peer
	// gone are the members that were declared dead or left and have not
	// come back since (bounded by maxGone, the oldest forgotten first).
	gone        map[string]Departure
	ch          chan Event
	closed      bool
	overflowing bool
}

func newEventDelegate(log *slog.Logger, buffer int) *eventDelegate {
	return &eventDelegate{log: log, peers: map[string]peer{}, gone: map[string]Departure{}, ch: make(chan Event, buffer)}
}

func (d *eventDelegate) NotifyJoin(n *memberlist.Node)   { d.alive(n, EventJoin) }
func (d *eventDelegate) NotifyUpdate(n *memberlist.Node) { d.alive(n, EventUpdate) }

func (d *eventDelegate) alive(n *memberlist.Node, typ EventType) {
	meta, err := peerMeta(n)
	if err != nil {
		d.badMeta.Add(1)
		d.log.Warn("dropped gossip metadata", "node_id", n.Name, "addr", n.Address(), "size", len(n.Meta), "err", err)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, known := d.peers[n.Name]; !known {
		// Its earlier metadata was dropped: this is the first time the
		// member is visible, so it joins now.
		typ = EventJoin
	}
	d.peers[n.Name] = peer{meta: meta, addr: n.Address()}
	delete(d.gone, n.Name)
	d.emit(Event{Type: typ, Meta: meta.Clone(), Addr: n.Address()})
}

func (d *eventDelegate) NotifyLeave(n *memberlist.Node) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, known := d.peers[n.Name]
	if !known {
		return // never visible (bad metadata), so nothing to retract
	}
	delete(d.peers, n.Name)
	typ := EventFail
	// The last metadata memberlist holds may carry the leaving flag that
	// no update event delivered yet.
	if last, err := peerMeta(n); err == nil && last.Leaving {
		p.meta = last
	}
	if p.meta.Leaving {
		typ = EventLeave
	}
	d.depart(Departure{Meta: p.meta.Clone(), Addr: p.addr, Left: typ == EventLeave, At: time.Now()})
	d.emit(Event{Type: typ, Meta: p.meta.Clone(), Addr: p.addr})
}

// peerMeta decodes a member's metadata and checks it names the member.
func peerMeta(n *memberlist.Node) (Meta, error) {
	meta, err := DecodeMeta(n.Meta)
	if err != nil {
		return Meta{}, err
	}
	if meta.NodeID != n.Name {
		return Meta{}, fmt.Errorf("%w: node_id %q differs from gossip name %q", ErrInvalidMeta, meta.NodeID, n.Name)
	}
	return meta, nil
}

// emit must be called with d.mu held.
func (d *eventDelegate) emit(ev Event) {
	if d.closed {
		return
	}
	select {
	case d.ch <- ev:
		d.overflowing = false
	default:
		total := d.dropped.Add(1)
		if !d.overflowing {
			// Log once per overflow episode, not once per event.
			d.log.Warn("event reader too slow, dropping gossip events", "event", ev.Type.String(),
				"node_id", ev.Meta.NodeID, "dropped_total", total, "buffer", cap(d.ch))
		}
		d.overflowing = true
	}
}

func (d *eventDelegate) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		close(d.ch)
	}
}

// depart records a member that is gone. d.mu is held.
func (d *eventDelegate) depart(dep Departure) {
	if len(d.gone) >= maxGone {
		oldest := ""
		for id, g := range d.gone {
			if oldest == "" || g.At.Before(d.gone[oldest].At) {
				oldest = id
			}
		}
		delete(d.gone, oldest)
	}
	d.gone[dep.Meta.NodeID] = dep
}

func (d *eventDelegate) view() View {
	d.mu.Lock()
	defer d.mu.Unlock()
	v := View{Alive: make([]Meta, 0, len(d.peers)), Gone: make([]Departure, 0, len(d.gone))}
	for _, name := range slices.Sorted(maps.Keys(d.peers)) {
		v.Alive = append(v.Alive, d.peers[name].meta.Clone())
	}
	for _, name := range slices.Sorted(maps.Keys(d.gone)) {
		g := d.gone[name]
		g.Meta = g.Meta.Clone()
		v.Gone = append(v.Gone, g)
	}
	return v
}

func (d *eventDelegate) members() []Meta {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Meta, 0, len(d.peers))
	// Keys are node IDs (peerMeta checks they match).
	for _, name := range slices.Sorted(maps.Keys(d.peers)) {
		out = append(out, d.peers[name].meta.Clone())
	}
	return out
}
