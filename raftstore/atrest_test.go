package raftstore

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-sched/shoal/internal/seal"
)

const marker = "MARKER-7c1d0e-at-rest"

// filesWith lists the files under dir whose bytes contain s.
func filesWith(t *testing.T, dir, s string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func createMarked(t *testing.T, n *Node, name string) {
	t.Helper()
	svc := testService("id-"+name, name, 1)
	svc.Spec.Env = []string{"SECRET=" + marker}
	if _, err := n.Apply(t.Context(), CreateService{Service: svc}); err != nil {
		t.Fatal(err)
	}
}

// With a data key, no file of any member holds a service's env, in the
// log or in the snapshots, and a restart reads it all back.
func TestDataKeySealsLogAndSnapshots(t *testing.T) {
	keys := [][]byte{seal.NewKey(), seal.NewKey(), seal.NewKey()}
	c := newCluster(t, 3, func(cfg *Config) {
		var i int
		fmt.Sscanf(cfg.ID, "m%d", &i)
		cfg.DataKey = keys[i]
		cfg.SnapshotThreshold = 8
		cfg.SnapshotInterval = 50 * time.Millisecond
	})
	leader := c.waitLeader()
	for i := range 30 {
		createMarked(t, c.nodes[leader], fmt.Sprintf("s%02d", i))
	}
	for i := range c.nodes {
		c.waitService(i, "s29")
		snapDir := filepath.Join(c.base, fmt.Sprintf("m%d", i), "snapshots")
		waitFor(t, 15*time.Second, "no snapshot taken", func() bool {
			entries, _ := os.ReadDir(snapDir)
			return len(entries) > 0
		})
	}
	want := dump(t, c.nodes[leader].State().Read())
	c.closeAll()
	if files := filesWith(t, c.base, marker); len(files) > 0 {
		t.Fatalf("the marker is in plaintext in %v", files)
	}
	for i := range c.nodes {
		c.restart(i, nil)
	}
	c.waitLeader()
	for i := range c.nodes {
		waitFor(t, 15*time.Second, "state not restored", func() bool {
			return len(c.nodes[i].State().Read().Services()) == 30
		})
		if got := dump(t, c.nodes[i].State().Read()); got != want {
			t.Errorf("m%d: state read back from sealed files differs", i)
		}
	}
}

// A data dir written without a data key keeps working once it has one:
// old entries are read as they are, new ones are sealed.
func TestDataKeyOnAnUnencryptedDataDir(t *testing.T) {
	c := newCluster(t, 1, nil)
	createMarked(t, c.nodes[c.waitLeader()], "old")
	c.kill(0)
	if files := filesWith(t, c.base, marker); len(files) == 0 {
		t.Fatal("the test's premise fails: the unencrypted log does not hold the marker")
	}
	key := seal.NewKey()
	c.restart(0, func(cfg *Config) { cfg.DataKey = key })
	c.waitLeader()
	waitFor(t, 15*time.Second, "the old entry is not read back", func() bool {
		return c.nodes[0].State().Read().ServiceByName("old") != nil
	})
	svc := testService("id-new", "new", 1)
	svc.Spec.Env = []string{"NEW=" + marker + "-new"}
	if _, err := c.nodes[0].Apply(t.Context(), CreateService{Service: svc}); err != nil {
		t.Fatal(err)
	}
	c.kill(0)
	if files := filesWith(t, c.base, marker+"-new"); len(files) > 0 {
		t.Fatalf("an entry written with the data key is in plaintext in %v", files)
	}
	c.restart(0, func(cfg *Config) { cfg.DataKey = key })
	c.waitLeader()
	waitFor(t, 15*time.Second, "both entries are not read back", func() bool {
		v := c.nodes[0].State().Read()
		return v.ServiceByName("old") != nil && v.ServiceByName("new") != nil
	})
}

// Open reports the plaintext size of a sealed snapshot: raft checks an
// installed snapshot's size against the bytes it streams to a follower.
func TestSealedSnapshotReportsPlainSize(t *testing.T) {
	files, err := raft.NewFileSnapshotStoreWithLogger(t.TempDir(), 1, newHCLog(slog.New(slog.DiscardHandler), "snapshot"))
	if err != nil {
		t.Fatal(err)
	}
	_, snaps, err := sealStores(seal.NewKey(), nil, files)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := snaps.Create(1, 10, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain := bytes.Repeat([]byte(marker), 40000)
	if _, err := sink.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	meta, rc, err := snaps.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, plain) || meta.Size != int64(len(plain)) {
		t.Fatalf("read %d bytes (%v), meta size %d; want %d", len(got), err, meta.Size, len(plain))
	}
}
