package dispatcher

import (
	"sync"
	"time"
)

// sessionTable holds the open sessions, one per node. Its lock guards the
// map alone and is never held while anything else is done.
type sessionTable struct {
	mu     sync.Mutex
	byNode map[string]*session
	nextID uint64
}

func newSessionTable() *sessionTable {
	return &sessionTable{byNode: make(map[string]*session)}
}

// attach registers s as its node's session and returns the one it replaced
// (nil if none), which the caller ends.
func (t *sessionTable) attach(s *session) (old *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nextID++
	s.id = t.nextID
	old = t.byNode[s.nodeID]
	t.byNode[s.nodeID] = s
	return old
}

// detach forgets s and reports whether it was still its node's session.
func (t *sessionTable) detach(s *session) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byNode[s.nodeID] != s {
		return false
	}
	delete(t.byNode, s.nodeID)
	return true
}

// get returns the node's session, or nil.
func (t *sessionTable) get(nodeID string) *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byNode[nodeID]
}

// all returns every open session.
func (t *sessionTable) all() []*session {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*session, 0, len(t.byNode))
	for _, s := range t.byNode {
		out = append(out, s)
	}
	return out
}

func (t *sessionTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byNode)
}

// endNode ends the node's session, if it has one, with cause.
func (t *sessionTable) endNode(nodeID string, cause error) {
	t.mu.Lock()
	s := t.byNode[nodeID]
	if s != nil {
		delete(t.byNode, nodeID)
	}
	t.mu.Unlock()
	if s != nil {
		s.end(cause)
	}
}

// closeAll ends every session with cause.
func (t *sessionTable) closeAll(cause error) {
	for _, s := range t.all() {
		s.end(cause)
	}
}

// endSilent ends the sessions whose agent sent nothing for longer than ttl
// before now: their connection died without closing.
func (t *sessionTable) endSilent(ttl time.Duration, now time.Time) {
	cutoff := now.Add(-ttl).UnixNano()
	for _, s := range t.all() {
		if s.seen.Load() < cutoff {
			s.end(ErrSessionTimeout)
		}
	}
}
