package manager

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

const (
	// keyCheckInterval is how often the leader looks whether a rotation
	// step is due and whether every live node runs the current keys.
	keyCheckInterval = 250 * time.Millisecond
	// keyWaitLogInterval spaces the notes about nodes a rotation waits for.
	keyWaitLogInterval = 30 * time.Second
	// keyStepPatience bounds the wait for nodes that do not take a step of
	// a rotation (a stuck agent, an old one that never advertises its
	// version): past it the rotation goes on without them, since a removed
	// node must not keep reading gossip because another node is unwell.
	// Those nodes may then flap until their session gives them the keys.
	keyStepPatience = 2 * time.Minute
)

// keyDuty is the leader duty that owns the gossip keys: it makes the first
// key of a new cluster and rotates the key every rotation interval and
// after a node or manager was removed. A rotation is three commits (add
// the new key behind the primary, make it primary, drop the old one) and
// each waits until every live node in the state advertises the version
// before it in gossip: then no member ever gets a packet it cannot read,
// and nobody flaps.
type keyDuty struct {
	m      *Manager
	node   *raftstore.Node
	gossip *gossipRun // nil when gossip is off: nobody to wait for
	logged time.Time
}

func (d *keyDuty) run(ctx context.Context) error {
	t := time.NewTicker(keyCheckInterval)
	defer t.Stop()
	for {
		if err := d.step(ctx, time.Now().UTC()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// step commits the next change of the keyring, if one is due and every
// live node caught up.
func (d *keyDuty) step(ctx context.Context, now time.Time) error {
	v := d.node.State().Read()
	ring, ok := v.GossipKeyring()
	if !ok {
		key, err := d.m.firstGossipKey()
		if err != nil {
			return err
		}
		d.m.log.Info("making the cluster's gossip key")
		return d.commit(ctx, raftstore.SetGossipKeys{Keys: []api.GossipKey{{Key: key, Index: 1, CreatedAt: now}}, At: now})
	}
	next, adds, err := nextGossipKeys(ring, v.Cluster().Settings.KeyRotation(), now, newGossipKey)
	if err != nil || next == nil {
		return err
	}
	if waiting := d.behind(v, ring.Version); len(waiting) > 0 {
		if stillWaiting(ring, now) {
			if now.Sub(d.logged) > keyWaitLogInterval {
				d.logged = now
				d.m.log.Info("gossip key rotation waits for nodes to take the current keys", "keys_version", ring.Version, "nodes", waiting)
			}
			return nil
		}
		d.m.log.Warn("gossip key rotation goes on without nodes that did not take the current keys in time; they may flap",
			"keys_version", ring.Version, "nodes", waiting, "patience", keyStepPatience)
	}
	d.m.log.Info("gossip key rotation step", "keys_version", ring.Version+1, "keys", len(next), "new_key", adds,
		"requested", ring.RotateRequested)
	return d.commit(ctx, raftstore.SetGossipKeys{Keys: next, ExpectedVersion: ring.Version, ClearRotateRequest: adds, At: now})
}

// stillWaiting reports whether a rotation step may still wait for nodes
// that lag: the current version is younger than keyStepPatience.
func stillWaiting(ring api.GossipKeyring, now time.Time) bool {
	return now.Sub(ring.UpdatedAt) < keyStepPatience
}

func (d *keyDuty) commit(ctx context.Context, c raftstore.SetGossipKeys) error {
	if _, err := d.node.Apply(ctx, c); err != nil {
		return fmt.Errorf("gossip keys: %w", err)
	}
	return nil
}

// behind lists the live gossip members, known to the state as a node or a
// manager, that do not advertise keys version yet. A removed node is not
// waited for: it is what the rotation locks out.
func (d *keyDuty) behind(v *raftstore.View, version uint64) []string {
	if d.gossip == nil {
		return nil
	}
	var out []string
	for _, meta := range d.gossip.view().Alive {
		_, isManager := v.Manager(meta.NodeID)
		if (isManager || v.Node(meta.NodeID) != nil) && meta.KeysVersion < version {
			out = append(out, meta.NodeID)
		}
	}
	return out
}

// nextGossipKeys returns the keyring that follows ring (nil: nothing due),
// and whether it adds a new key. With one key, a new one is added behind it
// once the primary is interval old or a rotation was requested; then the
// newest key becomes primary; then the others are dropped.
func nextGossipKeys(ring api.GossipKeyring, interval time.Duration, now time.Time, newKey func() ([]byte, error)) ([]api.GossipKey, bool, error) {
	keys := ring.Clone().Keys
	if len(keys) == 0 {
		return nil, false, nil
	}
	if len(keys) == 1 {
		if !ring.RotateRequested && now.Sub(keys[0].CreatedAt) < interval {
			return nil, false, nil
		}
		key, err := newKey()
		if err != nil {
			return nil, false, err
		}
		return append(keys, api.GossipKey{Key: key, Index: ring.Version + 1, CreatedAt: now}), true, nil
	}
	newest := 0
	for i, k := range keys {
		if k.Index > keys[newest].Index {
			newest = i
		}
	}
	if newest != 0 {
		k := keys[newest]
		return append([]api.GossipKey{k}, slices.Delete(keys, newest, newest+1)...), false, nil
	}
	return keys[:1], false, nil
}

func newGossipKey() ([]byte, error) {
	key := make([]byte, api.GossipKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("gossip key: %w", err)
	}
	return key, nil
}

// firstGossipKey is the key a new cluster starts with: the one given by
// --gossip-key, if any (for operators who must know it in advance), else a
// random one.
func (m *Manager) firstGossipKey() ([]byte, error) {
	if len(m.gossipKey) > 0 {
		return slices.Clone(m.gossipKey), nil
	}
	return newGossipKey()
}
