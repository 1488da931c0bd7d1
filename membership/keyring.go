package membership

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// ErrNoKeyring is returned by SetKeys on a member started without
// encryption: turning it on while running would cut the member off from
// its peers until they all did the same.
var ErrNoKeyring = errors.New("gossip member runs without encryption")

// SetKeys makes keys (primary first) the member's keyring and advertises
// version as Meta.KeysVersion. It adds the new keys first, then switches
// the primary, then drops the keys no longer listed, so that the member
// never refuses a peer that is one step behind or ahead in the same
// rotation. A member never drops the key it encrypted with before the
// call unless keys says so.
func (m *Member) SetKeys(keys [][]byte, version uint64) error {
	if err := checkKeys(keys, false); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return ErrClosed
	case m.left:
		return ErrLeft
	}
	ring := m.keyring
	if ring == nil || len(ring.GetKeys()) == 0 {
		return ErrNoKeyring
	}
	for _, k := range keys {
		if err := ring.AddKey(bytes.Clone(k)); err != nil {
			return fmt.Errorf("%w: add gossip key: %w", ErrInvalidConfig, err)
		}
	}
	if err := ring.UseKey(keys[0]); err != nil {
		return fmt.Errorf("use gossip key: %w", err)
	}
	for _, k := range ring.GetKeys() {
		if !slices.ContainsFunc(keys, func(want []byte) bool { return bytes.Equal(want, k) }) {
			if err := ring.RemoveKey(k); err != nil {
				return fmt.Errorf("remove gossip key: %w", err)
			}
		}
	}
	if m.current.KeysVersion == version {
		return nil
	}
	meta := m.current.Clone()
	meta.KeysVersion = version
	enc, err := EncodeMeta(meta)
	if err != nil {
		return err
	}
	m.current = meta
	m.meta.set(enc)
	if err := m.list.UpdateNode(broadcastTimeout); err != nil {
		return fmt.Errorf("%w: keys version of %s after %v: %w", ErrBroadcast, meta.NodeID, broadcastTimeout, err)
	}
	m.log.Info("gossip keyring installed", "keys_version", version, "keys", len(keys))
	return nil
}

// Keys returns the member's keyring, primary first (nil without
// encryption).
func (m *Member) Keys() [][]byte {
	ring := m.keyring
	if ring == nil {
		return nil
	}
	keys := ring.GetKeys()
	// GetKeys lists the primary first already; copy so callers cannot
	// change what memberlist uses.
	return cloneKeys(keys)
}
