package api

import (
	"bytes"
	"strconv"
	"time"
)

// UnlockKeySize is the size of the cluster's unlock key (AES-256).
const UnlockKeySize = 32

// Autolock is whether the managers keep their data keys wrapped with the
// cluster's unlock key, and that key. It lives in Raft (whose entries and
// snapshots the data keys encrypt): a manager that restarts has it only
// once it is unlocked, and every manager re-wraps its data key when it
// changes.
type Autolock struct {
	Enabled   bool      `json:"enabled"`
	UnlockKey []byte    `json:"unlock_key,omitempty"`
	Version   uint64    `json:"version"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Clone returns a deep copy of a.
func (a Autolock) Clone() Autolock {
	a.UnlockKey = bytes.Clone(a.UnlockKey)
	return a
}

// ValidateAutolock checks a change of autolock: an unlock key of
// UnlockKeySize bytes when enabled, none when not. Errors never show it.
func ValidateAutolock(enabled bool, key []byte) error {
	switch {
	case enabled && len(key) != UnlockKeySize:
		return fieldErr("unlock_key", strconv.Itoa(len(key))+" bytes", "want %d bytes", UnlockKeySize)
	case !enabled && len(key) != 0:
		return fieldErr("unlock_key", strconv.Itoa(len(key))+" bytes", "want none when autolock is off")
	}
	return nil
}
