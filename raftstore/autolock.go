package raftstore

import (
	"fmt"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// tableAutolock holds the one autolock record.
const tableAutolock = "autolock"

const autolockKey = "autolock"

// CmdSetAutolock is in the range of log types reserved for at-rest keys.
const CmdSetAutolock CommandType = 151

// SetAutolock turns autolock on (with the unlock key, made by the leader
// and carried in the command) or off (no key). ExpectedVersion must equal
// the record's version (0 before the first), so that two rotations of the
// key cannot both win.
type SetAutolock struct {
	Enabled         bool
	UnlockKey       []byte `json:",omitempty"`
	ExpectedVersion uint64
	At              time.Time
}

func (SetAutolock) commandType() CommandType { return CmdSetAutolock }

func (t *tx) setAutolock(c SetAutolock) (any, error) {
	if err := api.ValidateAutolock(c.Enabled, c.UnlockKey); err != nil {
		return nil, fmt.Errorf("autolock: %w: %w", ErrInvalid, err)
	}
	var cur api.Autolock
	if p, ok := t.first(tableAutolock, "id", autolockKey).(*api.Autolock); ok {
		cur = *p
	}
	if c.ExpectedVersion != cur.Version {
		return nil, fmt.Errorf("autolock: at version %d, expected %d: %w", cur.Version, c.ExpectedVersion, ErrConflict)
	}
	next := api.Autolock{Enabled: c.Enabled, UnlockKey: c.UnlockKey, Version: cur.Version + 1, UpdatedAt: c.At}.Clone()
	t.insert(tableAutolock, &next)
	return next.Clone(), nil
}

// Autolock returns the autolock record (a copy; zero before the first).
func (v *View) Autolock() api.Autolock {
	if a, ok := v.first(tableAutolock, "id", autolockKey).(*api.Autolock); ok {
		return a.Clone()
	}
	return api.Autolock{}
}
