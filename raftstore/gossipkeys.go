package raftstore

import (
	"fmt"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// tableGossipKeys holds the one gossip keyring of the cluster.
const tableGossipKeys = "gossip_keys"

// gossipKeysKey is the one row of the gossip keyring table.
const gossipKeysKey = "gossip_keys"

// CmdSetGossipKeys is outside the iota list on purpose: its number is in
// the range of log types reserved for gossip keys.
const CmdSetGossipKeys CommandType = 150

// SetGossipKeys replaces the cluster's gossip keys (Keys[0] the primary).
// ExpectedVersion must equal the keyring's version (0 when there is none
// yet), so that two leaders' rotation steps cannot interleave. The FSM
// bumps Version; ClearRotateRequest drops a pending rotation request (the
// step that adds a new key does, since the new key is what the request
// asked for). The keys come inside the command: Apply makes none.
type SetGossipKeys struct {
	Keys               []api.GossipKey
	ExpectedVersion    uint64
	ClearRotateRequest bool `json:",omitempty"`
	At                 time.Time
}

func (SetGossipKeys) commandType() CommandType { return CmdSetGossipKeys }

func (t *tx) setGossipKeys(c SetGossipKeys) (any, error) {
	if err := api.ValidateGossipKeys(c.Keys); err != nil {
		return nil, fmt.Errorf("gossip keyring: %w: %w", ErrInvalid, err)
	}
	var cur api.GossipKeyring
	if p, ok := t.first(tableGossipKeys, "id", gossipKeysKey).(*api.GossipKeyring); ok {
		cur = *p
	}
	if c.ExpectedVersion != cur.Version {
		return nil, fmt.Errorf("gossip keyring: at version %d, expected %d: %w", cur.Version, c.ExpectedVersion, ErrConflict)
	}
	next := api.GossipKeyring{Keys: c.Keys, Version: cur.Version + 1, UpdatedAt: c.At}
	next = next.Clone()
	next.RotateRequested = cur.RotateRequested && !c.ClearRotateRequest
	t.insert(tableGossipKeys, &next)
	return next.Clone(), nil
}

// requestGossipRotation marks the keyring for an early rotation: a node or
// manager was removed, and it knows the current keys.
func (t *tx) requestGossipRotation() {
	cur, ok := t.first(tableGossipKeys, "id", gossipKeysKey).(*api.GossipKeyring)
	if !ok || cur.RotateRequested {
		return
	}
	next := cur.Clone()
	next.RotateRequested = true
	t.insert(tableGossipKeys, &next)
}

// GossipKeyring returns the cluster's gossip keys (a copy) and whether
// there are any yet.
func (v *View) GossipKeyring() (api.GossipKeyring, bool) {
	if r, ok := v.first(tableGossipKeys, "id", gossipKeysKey).(*api.GossipKeyring); ok {
		return r.Clone(), true
	}
	return api.GossipKeyring{}, false
}
