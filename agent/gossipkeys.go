package agent

import (
	"context"
	"slices"
	"sync"

	"github.com/shoal-sched/shoal/membership"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// keyBox holds the gossip keyring the leader last sent (primary first).
// It lives in memory only: a restarted agent opens its session before it
// gossips anyway (that is how it finds the managers), and gets the current
// keys there; a copy on disk would only be a secret more to steal, and a
// stale one after a rotation that happened while the agent was down.
type keyBox struct {
	mu      sync.Mutex
	version uint64
	keys    [][]byte
	// changed is closed and replaced at every new version.
	changed chan struct{}
}

func newKeyBox() *keyBox { return &keyBox{changed: make(chan struct{})} }

// set stores a keyring from the leader; an older or equal version (a
// leader that lags a moment behind) changes nothing. It reports whether
// the keyring was taken.
func (b *keyBox) set(m *shoalpb.GossipKeys) bool {
	if m.GetVersion() == 0 || len(m.GetKeys()) == 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.GetVersion() <= b.version {
		return false
	}
	b.version = m.GetVersion()
	b.keys = make([][]byte, len(m.GetKeys()))
	for i, k := range m.GetKeys() {
		b.keys[i] = slices.Clone(k)
	}
	close(b.changed)
	b.changed = make(chan struct{})
	return true
}

// get returns the keyring (nil before the first) and a channel closed at
// the next change.
func (b *keyBox) get() (version uint64, keys [][]byte, changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keys = make([][]byte, len(b.keys))
	for i, k := range b.keys {
		keys[i] = slices.Clone(k)
	}
	return b.version, keys, b.changed
}

// waitKeys blocks until the first keyring arrived on a session. It
// reports false when ctx ended first.
func (a *Agent) waitKeys(ctx context.Context) bool {
	for {
		v, _, changed := a.keys.get()
		if v > 0 {
			return true
		}
		a.log.Info("gossip waits for the cluster's gossip keys from the leader")
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		}
	}
}

// syncKeys installs the keyring last received in the gossip member, if it
// runs another version, and returns the channel of the next change.
func (a *Agent) syncKeys(m *membership.Member) <-chan struct{} {
	version, keys, changed := a.keys.get()
	if version == 0 || version == m.LocalMeta().KeysVersion {
		return changed
	}
	if err := m.SetKeys(keys, version); err != nil {
		a.log.Error("installing the cluster's gossip keys failed", "keys_version", version, "err", err)
	}
	return changed
}

// GossipKeysVersion is the version of the cluster's gossip keys the
// agent's gossip member runs (0 before it joined gossip).
func (a *Agent) GossipKeysVersion() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if m, ok := a.gossip.(*membership.Member); ok {
		return m.LocalMeta().KeysVersion
	}
	return 0
}
