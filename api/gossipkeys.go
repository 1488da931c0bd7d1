package api

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// GossipKeySize is the size of every gossip key the managers make
// (AES-256). Keys given by an operator (--gossip-key) may be 16 or 24 bytes.
const GossipKeySize = 32

// MaxGossipKeys bounds the keyring: a rotation needs two keys at once, and
// a third leaves room for a rotation asked for during another.
const MaxGossipKeys = 3

// DefaultGossipKeyRotation is how often the leader replaces the gossip key
// when the cluster settings name no other interval.
const DefaultGossipKeyRotation = 12 * time.Hour

// MinGossipKeyRotation is the shortest rotation interval an operator may
// set: each rotation waits for every live node, which takes seconds.
const MinGossipKeyRotation = time.Minute

// GossipKeyring is the cluster's gossip encryption keys, kept in Raft and
// handed to every node. Keys[0] is the primary, the one members encrypt
// with; the others are still accepted. A rotation moves it through three
// versions: the new key added behind the primary, then made primary, then
// the old one removed, each only once every live node runs the version
// before.
type GossipKeyring struct {
	// Version grows by one with every change (the FSM sets it); nodes
	// advertise the version they run, which is how the leader knows that
	// a step reached everyone.
	Version uint64      `json:"version"`
	Keys    []GossipKey `json:"keys"`
	// RotateRequested is set when a node or manager is removed: the next
	// rotation must not wait for the interval, so that the removed node
	// cannot read gossip for long.
	RotateRequested bool      `json:"rotate_requested,omitempty"`
	UpdatedAt       time.Time `json:"updated_at,omitzero"`
}

// GossipKey is one key of the ring.
type GossipKey struct {
	Key []byte `json:"key"`
	// Index is the keyring version that added the key (set by the leader
	// that made it): of two keys, the higher index is the newer, which
	// tells the steps of a rotation apart without comparing clocks.
	Index uint64 `json:"index"`
	// CreatedAt comes from the leader that made the key (inside the
	// command): rotation is due at CreatedAt of the primary plus the
	// interval.
	CreatedAt time.Time `json:"created_at"`
}

// Primary returns the key members encrypt with (nil for an empty ring).
func (r GossipKeyring) Primary() *GossipKey {
	if len(r.Keys) == 0 {
		return nil
	}
	return &r.Keys[0]
}

// Raw returns the keys, primary first, as memberlist takes them.
func (r GossipKeyring) Raw() [][]byte {
	out := make([][]byte, len(r.Keys))
	for i, k := range r.Keys {
		out[i] = bytes.Clone(k.Key)
	}
	return out
}

// Clone returns a deep copy of r.
func (r GossipKeyring) Clone() GossipKeyring {
	keys := make([]GossipKey, len(r.Keys))
	for i, k := range r.Keys {
		keys[i] = GossipKey{Key: bytes.Clone(k.Key), Index: k.Index, CreatedAt: k.CreatedAt}
	}
	r.Keys = keys
	return r
}

// ValidateGossipKeys checks a keyring's keys: one to MaxGossipKeys keys of
// 16, 24 or 32 bytes, no key twice. Errors never show a key.
func ValidateGossipKeys(keys []GossipKey) error {
	if len(keys) == 0 || len(keys) > MaxGossipKeys {
		return fieldErr("gossip_keys", strconv.Itoa(len(keys)), "want 1 to %d keys", MaxGossipKeys)
	}
	for i, k := range keys {
		switch len(k.Key) {
		case 16, 24, 32:
		default:
			return fieldErr(fmt.Sprintf("gossip_keys[%d]", i), strconv.Itoa(len(k.Key))+" bytes", "want 16, 24 or 32 bytes")
		}
		for j := range i {
			if bytes.Equal(keys[j].Key, k.Key) {
				return fieldErr(fmt.Sprintf("gossip_keys[%d]", i), "(secret)", "the same key as gossip_keys[%d]", j)
			}
		}
	}
	return nil
}
