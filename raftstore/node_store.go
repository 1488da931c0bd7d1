package raftstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"go.etcd.io/bbolt"
)

// memberIDFile keeps the member id in the data dir: the id must not change
// across restarts, or the member would come back as a stranger.
const memberIDFile = "member-id"

// memberID returns the id recorded in dir, recording want (or a new random
// id) on the first start. A different want than the recorded id is an error.
func memberID(dir, want string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("raft data dir: %w", err)
	}
	path := filepath.Join(dir, memberIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		have := strings.TrimSpace(string(b))
		if have == "" {
			return "", fmt.Errorf("member id file %s: empty", path)
		}
		if want != "" && want != have {
			return "", fmt.Errorf("member id %q: data dir %s belongs to member %q: %w", want, dir, have, ErrInvalid)
		}
		return have, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("member id: %w", err)
	}
	id := want
	if id == "" {
		var r [8]byte
		if _, err := rand.Read(r[:]); err != nil {
			return "", fmt.Errorf("member id: %w", err)
		}
		id = hex.EncodeToString(r[:])
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("member id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("member id: %w", err)
	}
	return id, nil
}

// logFile is the Raft log and stable store under the data dir: a bbolt
// file (raft-boltdb). raft-wal was used before; its tail truncation (a
// follower dropping entries a new leader never committed) could leave a
// sealed segment without an index, and the member could then never start
// again (hashicorp/raft-wal#31, fixed in no release).
const logFile = "raft.db"

// oldWALDir is where raft-wal kept the log; openLogStore moves an existing
// one into the bbolt file once, and keeps it as oldWALDir+".migrated".
const oldWALDir = "wal"

// openLogStore opens (or makes) the log and stable store in dir.
func openLogStore(dir string, logger hclog.Logger) (*raftboltdb.BoltStore, error) {
	path := filepath.Join(dir, logFile)
	_, statErr := os.Stat(path)
	fresh := errors.Is(statErr, fs.ErrNotExist)
	store, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{Timeout: time.Second}})
	if err != nil {
		return nil, fmt.Errorf("raft log %s: %w", path, err)
	}
	if fresh {
		if err := migrateWAL(dir, store, logger); err != nil {
			return nil, errors.Join(err, store.Close(), os.Remove(path))
		}
	}
	return store, nil
}

// The keys hashicorp/raft keeps in its stable store. The numbers are read
// and written as numbers: raft-wal and raft-boltdb encode them differently.
var (
	stableUint64Keys = []string{"CurrentTerm", "LastVoteTerm"}
	stableBytesKeys  = []string{"LastVoteCand"}
)

// migrateWAL copies a raft-wal log left by an earlier version into store,
// so an upgraded member keeps every entry and its vote.
func migrateWAL(dir string, store *raftboltdb.BoltStore, logger hclog.Logger) error {
	walDir := filepath.Join(dir, oldWALDir)
	if _, err := os.Stat(walDir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(walDir, wal.WithLogger(logger), wal.WithMetaStore(meta))
	if err != nil {
		return errors.Join(fmt.Errorf("migrate the raft-wal log in %s: %w", walDir, err), meta.Close())
	}
	err = copyLog(w, store)
	// WAL.Close leaves its meta database open (raft-wal v0.4.0).
	err = errors.Join(err, w.Close(), meta.Close())
	if err != nil {
		return fmt.Errorf("migrate the raft-wal log in %s: %w", walDir, err)
	}
	logger.Info("migrated the raft-wal log", "from", walDir, "to", filepath.Join(dir, logFile))
	return os.Rename(walDir, walDir+".migrated")
}

// copyLog copies every entry and the stable keys of from into to.
func copyLog(from *wal.WAL, to *raftboltdb.BoltStore) error {
	for _, k := range stableUint64Keys {
		v, err := from.GetUint64([]byte(k))
		if err != nil {
			return fmt.Errorf("stable key %s: %w", k, err)
		}
		if err := to.SetUint64([]byte(k), v); err != nil {
			return err
		}
	}
	for _, k := range stableBytesKeys {
		v, err := from.Get([]byte(k))
		if err != nil {
			return fmt.Errorf("stable key %s: %w", k, err)
		}
		if len(v) > 0 {
			if err := to.Set([]byte(k), v); err != nil {
				return err
			}
		}
	}
	first, err := from.FirstIndex()
	if err != nil {
		return err
	}
	last, err := from.LastIndex()
	if err != nil || last == 0 {
		return err
	}
	const batch = 256
	logs := make([]*raft.Log, 0, batch)
	for i := first; i <= last; i++ {
		l := new(raft.Log)
		if err := from.GetLog(i, l); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		logs = append(logs, l)
		if len(logs) == batch || i == last {
			if err := to.StoreLogs(logs); err != nil {
				return err
			}
			logs = logs[:0]
		}
	}
	return nil
}

// Stats is what `cluster status` shows of this member.
type Stats struct {
	ID           string
	State        string // leader | follower | candidate | shutdown
	Term         uint64
	LastIndex    uint64
	CommitIndex  uint64
	AppliedIndex uint64
}

// leaderFanout copies raft's leadership notifications to every subscriber
// without ever blocking raft.
type leaderFanout struct {
	mu      sync.Mutex
	subs    map[chan bool]bool // subscriber → the last value it was sent
	closed  bool
	done    chan struct{}
	stopped chan struct{} // run has returned
}

func newLeaderFanout(notify <-chan bool) *leaderFanout {
	f := &leaderFanout{subs: make(map[chan bool]bool), done: make(chan struct{}), stopped: make(chan struct{})}
	go f.run(notify)
	return f
}

func (f *leaderFanout) run(notify <-chan bool) {
	defer close(f.stopped)
	for {
		select {
		case v := <-notify:
			f.publish(v)
		case <-f.done:
			return
		}
	}
}

// publish sends v to the subscribers it is news to: one that subscribed
// while this member led started with true, and raft's own notification of
// that leadership may come after.
func (f *leaderFanout) publish(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch, last := range f.subs {
		if last != v {
			sendLatest(ch, v)
			f.subs[ch] = v
		}
	}
}

// sendLatest sends v, dropping the oldest pending value if the channel is
// full. Only publish and close send, under the fanout lock, so the retry
// succeeds.
func sendLatest(ch chan bool, v bool) {
	select {
	case ch <- v:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	select {
	case ch <- v:
	default:
	}
}

func (f *leaderFanout) subscribe(leading bool) (<-chan bool, func()) {
	ch := make(chan bool, 4)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(ch)
		return ch, func() {}
	}
	if leading {
		ch <- true
	}
	f.subs[ch] = leading
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.subs[ch]; ok {
			delete(f.subs, ch)
			close(ch)
		}
	}
}

// close stops the fanout and closes every subscriber's channel. A leader
// that shuts down stops leading: raft's last notification is only best
// effort on shutdown (it may be dropped, or left unread when run stops), so
// close sends the false itself before the channels close.
func (f *leaderFanout) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	close(f.done)
	f.mu.Unlock()
	<-f.stopped
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch, leading := range f.subs {
		if leading {
			sendLatest(ch, false)
		}
		delete(f.subs, ch)
		close(ch)
	}
}
