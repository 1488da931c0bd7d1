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

	"github.com/hashicorp/go-hclog"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
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

// walStore is the raft-wal log and stable store under dir/wal. The meta
// database is opened here rather than by the WAL because WAL.Close leaves
// it open (raft-wal v0.4.0), and its file lock would block a restart of
// the member in the same process.
type walStore struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
}

func openWAL(dir string, logger hclog.Logger) (*walStore, error) {
	walDir := filepath.Join(dir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, fmt.Errorf("raft log dir: %w", err)
	}
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(walDir, wal.WithLogger(logger), wal.WithMetaStore(meta))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("raft log in %s: %w", walDir, err), meta.Close())
	}
	return &walStore{WAL: w, meta: meta}, nil
}

// Close closes the log, then its meta database.
func (s *walStore) Close() error {
	return errors.Join(s.WAL.Close(), s.meta.Close())
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
	mu     sync.Mutex
	subs   map[chan bool]struct{}
	closed bool
	done   chan struct{}
}

func newLeaderFanout(notify <-chan bool) *leaderFanout {
	f := &leaderFanout{subs: make(map[chan bool]struct{}), done: make(chan struct{})}
	go f.run(notify)
	return f
}

func (f *leaderFanout) run(notify <-chan bool) {
	for {
		select {
		case v := <-notify:
			f.publish(v)
		case <-f.done:
			return
		}
	}
}

func (f *leaderFanout) publish(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		sendLatest(ch, v)
	}
}

// sendLatest sends v, dropping the oldest pending value if the channel is
// full. Only publish sends, under the fanout lock, so the retry succeeds.
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
	f.subs[ch] = struct{}{}
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.subs[ch]; ok {
			delete(f.subs, ch)
			close(ch)
		}
	}
}

// close stops the fanout and closes every subscriber's channel.
func (f *leaderFanout) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	close(f.done)
	for ch := range f.subs {
		delete(f.subs, ch)
		close(ch)
	}
}
