package raftstore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// A data dir written by a version that kept its log in raft-wal opens with
// every entry and the vote carried over into raft.db, once.
func TestOpenLogStoreMigratesRaftWAL(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, oldWALDir), 0o700); err != nil {
		t.Fatal(err)
	}
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(filepath.Join(dir, oldWALDir), wal.WithMetaStore(meta))
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 600; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1 + i/300, Type: raft.LogCommand, Data: []byte{byte(i), byte(i >> 8)}})
	}
	if err := w.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := w.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	if err := w.Set([]byte("LastVoteCand"), []byte("m2")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := meta.Close(); err != nil {
		t.Fatal(err)
	}

	store, err := openLogStore(dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	first, _ := store.FirstIndex()
	last, _ := store.LastIndex()
	if first != 1 || last != 600 {
		t.Fatalf("migrated log holds %d..%d, want 1..600", first, last)
	}
	for _, want := range []*raft.Log{logs[0], logs[299], logs[599]} {
		var got raft.Log
		if err := store.GetLog(want.Index, &got); err != nil {
			t.Fatal(err)
		}
		if got.Term != want.Term || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("entry %d = term %d %v, want term %d %v", want.Index, got.Term, got.Data, want.Term, want.Data)
		}
	}
	if term, _ := store.GetUint64([]byte("CurrentTerm")); term != 3 {
		t.Fatalf("CurrentTerm = %d, want 3", term)
	}
	if cand, _ := store.Get([]byte("LastVoteCand")); string(cand) != "m2" {
		t.Fatalf("LastVoteCand = %q, want m2", cand)
	}
	if _, err := os.Stat(filepath.Join(dir, oldWALDir)); !os.IsNotExist(err) {
		t.Fatalf("the old wal dir is still in place after the migration (stat: %v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, oldWALDir+".migrated")); err != nil {
		t.Fatalf("the old wal dir was not kept as %s.migrated: %v", oldWALDir, err)
	}
}
