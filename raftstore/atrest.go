package raftstore

import (
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"

	"github.com/shoal-sched/shoal/internal/seal"
)

// sealedLogs encrypts the Data of every entry it stores (internal/seal)
// and decrypts it when read. Entries written before encryption was on are
// read as they are: an upgraded data dir keeps working, and its plaintext
// entries go away as snapshots compact the log.
type sealedLogs struct {
	raft.LogStore
	box *seal.Box
}

func (s sealedLogs) GetLog(index uint64, l *raft.Log) error {
	if err := s.LogStore.GetLog(index, l); err != nil {
		return err
	}
	data, err := s.box.Open(l.Data)
	if err != nil {
		return fmt.Errorf("raft log entry %d: %w", index, err)
	}
	l.Data = data
	return nil
}

func (s sealedLogs) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

func (s sealedLogs) StoreLogs(logs []*raft.Log) error {
	// Raft keeps the entries it passes (log cache, replication): seal
	// copies, never the entries themselves.
	out := make([]*raft.Log, len(logs))
	for i, l := range logs {
		c := *l
		if len(c.Data) > 0 {
			c.Data = s.box.Seal(c.Data)
		}
		out[i] = &c
	}
	return s.LogStore.StoreLogs(out)
}

// sealedSnapshots encrypts snapshots as a stream of sealed chunks. Open
// reports the plaintext size (raft checks an installed snapshot's size
// against what it streams); snapshots written before encryption was on
// are read as they are.
type sealedSnapshots struct {
	raft.SnapshotStore
	box *seal.Box
}

func (s sealedSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	w, err := s.box.NewWriter(sink)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("seal snapshot: %w", err), sink.Cancel())
	}
	return &sealedSink{SnapshotSink: sink, w: w}, nil
}

func (s sealedSnapshots) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.SnapshotStore.Open(id)
	if err != nil {
		return nil, nil, err
	}
	r, sealed, err := s.box.NewReader(rc)
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("snapshot %s: %w", id, err), rc.Close())
	}
	if sealed {
		m := *meta
		m.Size = seal.PlainSize(meta.Size)
		meta = &m
	}
	return meta, readCloser{Reader: r, Closer: rc}, nil
}

type sealedSink struct {
	raft.SnapshotSink
	w      *seal.Writer
	closed bool
}

func (s *sealedSink) Write(p []byte) (int, error) { return s.w.Write(p) }

// Close seals the last chunk and closes the file sink. Raft may call it
// twice (RecoverCluster closes a sink Persist closed already); as the
// file sink, the second call does nothing.
func (s *sealedSink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.w.Close(); err != nil {
		return errors.Join(err, s.SnapshotSink.Cancel())
	}
	return s.SnapshotSink.Close()
}

type readCloser struct {
	io.Reader
	io.Closer
}

// sealStores wraps the log and snapshot stores when there is a data key.
func sealStores(key []byte, logs raft.LogStore, snaps raft.SnapshotStore) (raft.LogStore, raft.SnapshotStore, error) {
	if len(key) == 0 {
		return logs, snaps, nil
	}
	box, err := seal.NewBox(key)
	if err != nil {
		return nil, nil, fmt.Errorf("data key: %w", err)
	}
	return sealedLogs{LogStore: logs, box: box}, sealedSnapshots{SnapshotStore: snaps, box: box}, nil
}
