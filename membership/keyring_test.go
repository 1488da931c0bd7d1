package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func ringKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// decryptCounter counts memberlist's logs of packets and streams it could
// not decrypt, at any level, and passes on what the handler under it logs.
type decryptCounter struct {
	slog.Handler
	n *atomic.Int64
}

func (h decryptCounter) Enabled(context.Context, slog.Level) bool { return true }

func (h decryptCounter) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(strings.ToLower(r.Message), "decrypt") {
		h.n.Add(1)
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h decryptCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return decryptCounter{Handler: h.Handler.WithAttrs(as), n: h.n}
}

func (h decryptCounter) WithGroup(name string) slog.Handler {
	return decryptCounter{Handler: h.Handler.WithGroup(name), n: h.n}
}

// startKeyedCluster starts n members sharing keys, each joining n0; edit,
// if given, changes each config.
func startKeyedCluster(t *testing.T, n int, keys [][]byte, edit ...func(*Config)) []*node {
	t.Helper()
	var nodes []*node
	for i := range n {
		var join []string
		if i > 0 {
			join = []string{nodes[0].Addr()}
		}
		cfg := testConfig(t, fmt.Sprintf("n%d", i), join...)
		cfg.Keys = keys
		for _, e := range edit {
			e(&cfg)
		}
		nodes = append(nodes, startNode(t, cfg))
	}
	waitConverged(t, nodes, n)
	return nodes
}

// waitKeysVersion waits until every node sees every other advertise version.
func waitKeysVersion(t *testing.T, nodes []*node, version uint64) {
	t.Helper()
	for _, nd := range nodes {
		waitFor(t, fmt.Sprintf("%s sees every member at keys version %d", nd.LocalMeta().NodeID, version), func() bool {
			ms := nd.Members()
			if len(ms) != len(nodes) {
				return false
			}
			for _, m := range ms {
				if m.KeysVersion != version {
					return false
				}
			}
			return true
		}, func() string { return fmt.Sprintf("members %+v", nd.Members()) })
	}
}

func noFlaps(t *testing.T, nodes []*node) {
	t.Helper()
	for _, nd := range nodes {
		if n := nd.rec.count(EventFail) + nd.rec.count(EventLeave); n != 0 {
			t.Errorf("%s saw %d fail/leave events during the rotation: %v", nd.LocalMeta().NodeID, n, nd.rec.summary())
		}
	}
}

// The three steps of a rotation, each applied member by member while
// gossip runs, never make a member refuse another: not one packet or
// stream fails to decrypt, nobody flaps, and every member ends on the new
// key alone. Failure detection is slower than the default here so that a
// member starved of CPU on a loaded machine does not flap for that reason;
// the count of decryption failures does not depend on timing.
func TestKeyRotationNoFlap(t *testing.T) {
	oldKey, newKey := ringKey(1), ringKey(2)
	var decryptFailures atomic.Int64
	nodes := startKeyedCluster(t, 5, [][]byte{oldKey}, func(c *Config) {
		c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult, c.GossipInterval = time.Second, 500*time.Millisecond, 4, 100*time.Millisecond
		c.Logger = slog.New(decryptCounter{Handler: c.Logger.Handler(), n: &decryptFailures})
	})
	steps := [][][]byte{{oldKey, newKey}, {newKey, oldKey}, {newKey}}
	for i, keys := range steps {
		version := uint64(i + 2)
		for _, nd := range nodes {
			if err := nd.SetKeys(keys, version); err != nil {
				t.Fatalf("step %d: SetKeys on %s: %v", i+1, nd.LocalMeta().NodeID, err)
			}
		}
		waitKeysVersion(t, nodes, version)
	}
	for _, nd := range nodes {
		if got := nd.Keys(); len(got) != 1 || !bytes.Equal(got[0], newKey) {
			t.Fatalf("%s ends with %d keys, want the new key alone", nd.LocalMeta().NodeID, len(got))
		}
	}
	// Gossip still flows on the new key alone.
	m := testMeta("n0")
	m.Labels = map[string]string{"after": "rotation"}
	if err := nodes[0].UpdateMeta(m); err != nil {
		t.Fatal(err)
	}
	for _, nd := range nodes[1:] {
		waitFor(t, nd.LocalMeta().NodeID+" sees n0's new label", func() bool {
			for _, mm := range nd.Members() {
				if mm.NodeID == "n0" && mm.Labels["after"] == "rotation" {
					return true
				}
			}
			return false
		})
	}
	noFlaps(t, nodes)
	if n := decryptFailures.Load(); n != 0 {
		t.Errorf("%d packets or streams failed to decrypt during the rotation", n)
	}
}

// A member left out of a rotation (a removed node keeps its old keyring)
// can neither read the gossip sent after it nor join again with its keys.
func TestKeyRotationLocksOutRemovedMember(t *testing.T) {
	oldKey, newKey := ringKey(1), ringKey(2)
	nodes := startKeyedCluster(t, 4, [][]byte{oldKey})
	removed, kept := nodes[3], nodes[:3]
	steps := [][][]byte{{oldKey, newKey}, {newKey, oldKey}, {newKey}}
	for i, keys := range steps {
		for _, nd := range kept {
			if err := nd.SetKeys(keys, uint64(i+2)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The kept members stop understanding the removed one...
	for _, nd := range kept {
		waitFor(t, nd.LocalMeta().NodeID+" declares the removed member failed", func() bool {
			return nd.rec.has("n3", EventFail)
		}, func() string { return fmt.Sprint(nd.rec.summary()) })
	}
	// ...and it does not see what they say after the rotation.
	m := testMeta("n0")
	m.Labels = map[string]string{"secret": "after"}
	if err := kept[0].UpdateMeta(m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n1 sees n0's new label", func() bool {
		for _, mm := range kept[1].Members() {
			if mm.NodeID == "n0" && mm.Labels["secret"] == "after" {
				return true
			}
		}
		return false
	})
	for _, mm := range removed.Members() {
		if mm.Labels["secret"] == "after" {
			t.Fatalf("the removed member read gossip sent after the rotation: %+v", mm)
		}
	}
	// A fresh start with the old keyring cannot join.
	cfg := testConfig(t, "n3again", kept[0].Addr())
	cfg.Keys = [][]byte{oldKey}
	if mem, err := Start(t.Context(), cfg); !errors.Is(err, ErrJoin) {
		if mem != nil {
			mem.Close()
		}
		t.Fatalf("Start with the old keyring = %v, want ErrJoin", err)
	}
	// The new key still works.
	cfg = testConfig(t, "n4", kept[0].Addr())
	cfg.Keys = [][]byte{newKey}
	startNode(t, cfg)
}

func TestSetKeysRefusesBadInput(t *testing.T) {
	plain := startNode(t, testConfig(t, "plain"))
	if err := plain.SetKeys([][]byte{ringKey(1)}, 1); !errors.Is(err, ErrNoKeyring) {
		t.Fatalf("SetKeys on a member without encryption = %v, want ErrNoKeyring", err)
	}
	cfg := testConfig(t, "keyed")
	cfg.Keys = [][]byte{ringKey(1)}
	keyed := startNode(t, cfg)
	for name, keys := range map[string][][]byte{
		"empty": nil, "short key": {[]byte("short")}, "duplicate": {ringKey(1), ringKey(1)},
	} {
		if err := keyed.SetKeys(keys, 2); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("SetKeys(%s) = %v, want ErrInvalidConfig", name, err)
		}
	}
	if got := keyed.Keys(); len(got) != 1 || !bytes.Equal(got[0], ringKey(1)) || keyed.LocalMeta().KeysVersion != 0 {
		t.Fatalf("a refused SetKeys changed the keyring or version")
	}
	bad := testConfig(t, "both")
	bad.Key, bad.Keys = ringKey(1), [][]byte{ringKey(2)}
	if _, err := Start(t.Context(), bad); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Start with Key and Keys = %v, want ErrInvalidConfig", err)
	}
}

// The decryption count of TestKeyRotationNoFlap sees a real mismatch: a
// member that drops the others' key at once is not understood.
func TestDecryptCounterSeesAMismatch(t *testing.T) {
	var decryptFailures atomic.Int64
	nodes := startKeyedCluster(t, 2, [][]byte{ringKey(1)}, func(c *Config) {
		c.Logger = slog.New(decryptCounter{Handler: c.Logger.Handler(), n: &decryptFailures})
	})
	if err := nodes[1].SetKeys([][]byte{ringKey(9)}, 2); err != nil && !errors.Is(err, ErrBroadcast) {
		t.Fatal(err)
	}
	waitFor(t, "a decryption failure is counted", func() bool { return decryptFailures.Load() > 0 })
}
