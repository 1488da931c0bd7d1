package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/shoal-sched/shoal/internal/seal"
	"github.com/shoal-sched/shoal/raftstore"
)

// atRest is this manager's data key and what its key file is wrapped with
// now (nil: stored as it is, mode 0600).
type atRest struct {
	key    []byte
	wrap   []byte
	dir    string
	logger interface {
		Info(msg string, args ...any)
		Warn(msg string, args ...any)
		Error(msg string, args ...any)
	}
}

// openDataKey returns the data key that encrypts this manager's Raft log
// and snapshots: a new one on the first start (also for a data dir written
// before encryption, which keeps being read), the stored one otherwise.
// A key wrapped with the unlock key (autolock) keeps the manager locked:
// it then serves nothing but UnlockCluster until it gets the key.
func (m *Manager) openDataKey(ctx context.Context) (*atRest, error) {
	dir := m.cfg.DataDir
	st, err := seal.LoadKey(dir, nil)
	switch {
	case errors.Is(err, seal.ErrNoKeyFile):
		key := seal.NewKey()
		if _, serr := os.Stat(filepath.Join(dir, "raft.db")); serr == nil {
			m.log.Warn("this data dir was written without encryption: new log entries and snapshots are encrypted; " +
				"the older entries stay readable in plaintext until snapshots compact them away")
		}
		if err := seal.StoreKey(dir, key, nil); err != nil {
			return nil, err
		}
		return &atRest{key: key, dir: dir, logger: m.log}, nil
	case err != nil:
		return nil, err
	case st.Locked:
		key, unlock, err := m.serveLocked(ctx)
		if err != nil {
			return nil, err
		}
		return &atRest{key: key, wrap: unlock, dir: dir, logger: m.log}, nil
	}
	return &atRest{key: st.Key, dir: dir, logger: m.log}, nil
}

// follow keeps the key file wrapped as the cluster's autolock record says:
// with the unlock key while autolock is on (re-wrapped when it rotates),
// as it is when it is off. It first waits until the state has applied
// every entry of the local log: the records a restarted manager sees
// before that are older than what it last wrote.
func (a *atRest) follow(ctx context.Context, node *raftstore.Node) {
	state := node.State()
	last := node.Stats().LastIndex
	for {
		changed := state.Changed()
		v := state.Read()
		if v.Index() >= last {
			al := v.Autolock()
			var want []byte
			if al.Enabled {
				want = al.UnlockKey
			}
			if !bytes.Equal(want, a.wrap) {
				if err := seal.StoreKey(a.dir, a.key, want); err != nil {
					a.logger.Error("re-wrapping the data key failed", "autolock", al.Enabled, "err", err)
				} else {
					a.wrap = bytes.Clone(want)
					a.logger.Info("data key re-wrapped", "autolock", al.Enabled, "version", al.Version)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// autolockDuty turns autolock on for a cluster started with --autolock
// whose autolock was never set (an operator's later choice wins), and
// logs the unlock key once: Swarm's `init --autolock` prints it likewise,
// and shoalctl cluster unlock-key shows it again at any time.
func (m *Manager) autolockDuty(ctx context.Context, node *raftstore.Node) error {
	if !m.cfg.Autolock || node.State().Read().Autolock().Version != 0 {
		return nil
	}
	key := seal.NewKey()
	if _, err := node.Apply(ctx, raftstore.SetAutolock{Enabled: true, UnlockKey: key, At: time.Now().UTC()}); err != nil {
		return fmt.Errorf("autolock: %w", err)
	}
	m.log.Warn("autolock is on: keep the unlock key, a restarted manager needs it (shoalctl cluster unlock-key shows it)",
		"unlock_key", seal.FormatUnlockKey(key))
	return nil
}
