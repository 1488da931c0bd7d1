package membership

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/shoal-sched/shoal/api"
)

func TestEncryption(t *testing.T) {
	key16 := bytes.Repeat([]byte{1}, 16)
	key24 := bytes.Repeat([]byte{2}, 24)
	key32 := bytes.Repeat([]byte{3}, 32)
	other16 := bytes.Repeat([]byte{9}, 16)
	for _, tc := range []struct {
		name            string
		clusterKey, key []byte
		wantJoined      bool
	}{
		{"same 16-byte key", key16, key16, true},
		{"same 24-byte key", key24, key24, true},
		{"same 32-byte key", key32, key32, true},
		{"different key", key16, other16, false},
		{"no key into encrypted cluster", key32, nil, false},
		{"key into plain cluster", nil, key16, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seedCfg := testConfig(t, "seed")
			seedCfg.Key = tc.clusterKey
			seed := startNode(t, seedCfg)
			cfg := testConfig(t, "newcomer", seed.Addr())
			cfg.Key = tc.key
			if tc.wantJoined {
				nd := startNode(t, cfg)
				waitConverged(t, []*node{seed, nd}, 2)
				return
			}
			m, err := Start(t.Context(), cfg)
			if err == nil {
				if cerr := m.Close(); cerr != nil {
					t.Errorf("Close: %v", cerr)
				}
				t.Fatal("Start joined a cluster with a mismatched key")
			}
			if !errors.Is(err, ErrJoin) {
				t.Fatalf("Start error = %v, want ErrJoin", err)
			}
			if got := seed.Members(); len(got) != 1 {
				t.Fatalf("seed lists %d members after a mismatched-key join, want 1: %+v", len(got), got)
			}
		})
	}
}

func TestParseGossipKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	enc := base64.StdEncoding.EncodeToString(key)
	for _, tc := range []struct {
		name    string
		in      string
		want    []byte
		wantMsg string
	}{
		{"32 bytes", enc, key, ""},
		{"16 bytes with newline", base64.StdEncoding.EncodeToString(key[:16]) + "\n", key[:16], ""},
		{"24 bytes", base64.StdEncoding.EncodeToString(key[:24]), key[:24], ""},
		{"wrong length", base64.StdEncoding.EncodeToString(key[:10]), nil, "10 bytes, want 16, 24 or 32"},
		{"not base64", "!!not-base64!!", nil, "not valid base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseGossipKey(tc.in)
			if tc.wantMsg == "" {
				if err != nil || !bytes.Equal(got, tc.want) {
					t.Fatalf("ParseGossipKey = %x, %v; want %x", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("ParseGossipKey error = %v, want ErrInvalidConfig saying %q", err, tc.wantMsg)
			}
			if strings.Contains(err.Error(), strings.TrimSpace(tc.in)) {
				t.Fatalf("error %q echoes the secret key", err)
			}
		})
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	big := testMeta("x")
	big.Labels = map[string]string{"blob": strings.Repeat("z", MetaMaxSize)}
	for _, tc := range []struct {
		name    string
		mutate  func(*Config)
		want    error
		wantMsg string
	}{
		{"no node name", func(c *Config) { c.NodeName = "" }, ErrInvalidConfig, "node name is empty"},
		{"bind host name", func(c *Config) { c.BindAddr = "localhost:0" }, ErrInvalidConfig, `bind_addr "localhost:0"`},
		{"bind port range", func(c *Config) { c.BindAddr = "127.0.0.1:70000" }, ErrInvalidConfig, `port "70000"`},
		{"advertise unspecified", func(c *Config) { c.AdvertiseAddr = "0.0.0.0:0" }, ErrInvalidConfig, "advertise_addr"},
		{"short key", func(c *Config) { c.Key = []byte("short") }, ErrInvalidConfig, "5 bytes"},
		{"probe timeout too long", func(c *Config) { c.ProbeTimeout = time.Second }, ErrInvalidConfig, "probe_timeout 1s"},
		{"negative suspicion", func(c *Config) { c.SuspicionMult = -1 }, ErrInvalidConfig, "suspicion_mult -1"},
		{"negative gossip interval", func(c *Config) { c.GossipInterval = -time.Second }, ErrInvalidConfig, "gossip_interval -1s"},
		{"meta of another node", func(c *Config) { c.Meta.NodeID = "y" }, ErrInvalidConfig, `node_id "y"`},
		{"bad role", func(c *Config) { c.Meta.Role = "boss" }, ErrInvalidMeta, `role "boss"`},
		{"leaving at start", func(c *Config) { c.Meta.Leaving = true }, ErrInvalidConfig, "leaving"},
		{"meta too large", func(c *Config) { c.Meta = big }, ErrMetaTooLarge, "512-byte limit"},
		{"empty join address", func(c *Config) { c.Join = []string{" "} }, ErrInvalidConfig, "empty address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "x")
			tc.mutate(&cfg)
			m, err := Start(t.Context(), cfg)
			if err == nil {
				if cerr := m.Close(); cerr != nil {
					t.Errorf("Close: %v", cerr)
				}
				t.Fatal("Start accepted a bad config")
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Start error = %v, want %v saying %q", err, tc.want, tc.wantMsg)
			}
		})
	}
}

// hostileDelegate makes a real memberlist peer advertise arbitrary
// metadata, as a buggy or foreign node would.
type hostileDelegate struct{ meta []byte }

func (d *hostileDelegate) NodeMeta(int) []byte             { return d.meta }
func (d *hostileDelegate) NotifyMsg([]byte)                {}
func (d *hostileDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *hostileDelegate) LocalState(bool) []byte          { return nil }
func (d *hostileDelegate) MergeRemoteState([]byte, bool)   {}

func startHostilePeer(t *testing.T, name string, meta []byte, join string) string {
	t.Helper()
	mc := memberlist.DefaultLANConfig()
	mc.Name = name
	mc.BindAddr, mc.BindPort = "127.0.0.1", 0
	mc.ProbeInterval, mc.ProbeTimeout = DefaultProbeInterval, DefaultProbeTimeout
	mc.SuspicionMult, mc.GossipInterval = DefaultSuspicionMult, DefaultGossipInterval
	mc.Delegate = &hostileDelegate{meta: meta}
	mc.LogOutput = io.Discard
	list, err := memberlist.Create(mc)
	if err != nil {
		t.Fatalf("hostile peer: %v", err)
	}
	t.Cleanup(func() {
		if err := list.Shutdown(); err != nil {
			t.Errorf("hostile peer shutdown: %v", err)
		}
	})
	if _, err := list.Join([]string{join}); err != nil {
		t.Fatalf("hostile peer join: %v", err)
	}
	return list.LocalNode().Address()
}

func TestBadPeerMetaDroppedAndCounted(t *testing.T) {
	impostor := testMeta("n0") // valid metadata, but naming another node
	for _, tc := range []struct {
		name string
		meta []byte
	}{
		{"garbage", []byte{0xde, 0xad, 0xbe, 0xef}},
		{"empty", nil},
		{"truncated", mustEncode(t, testMeta("bad"))[:10]},
		{"node id mismatch", mustEncode(t, impostor)},
		{"bad role", rawMeta(Meta{NodeID: "bad", Role: "boss"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := startCluster(t, 2)
			bad := startHostilePeer(t, "bad", tc.meta, nodes[0].Addr())
			for _, nd := range nodes {
				waitFor(t, nd.LocalMeta().NodeID+" counts bad metadata", func() bool { return nd.Stats().BadMeta > 0 })
			}
			// A good member joining after the bad one is still seen by all.
			late := startNode(t, testConfig(t, "late", nodes[1].Addr()))
			nodes = append(nodes, late)
			waitConverged(t, nodes, 3)
			for _, nd := range nodes {
				if slices.ContainsFunc(nd.Members(), func(m Meta) bool { return m.NodeID == "bad" }) {
					t.Errorf("%s lists the peer with bad metadata", nd.LocalMeta().NodeID)
				}
				nd.rec.mu.Lock()
				for _, ev := range nd.rec.events {
					if ev.Addr == bad {
						t.Errorf("%s emitted %v for the peer with bad metadata", nd.LocalMeta().NodeID, ev.Type)
					}
				}
				nd.rec.mu.Unlock()
			}
		})
	}
}

func TestEventOverflowCountedNotBlocking(t *testing.T) {
	cfg := testConfig(t, "slow")
	cfg.EventBuffer = 1
	slow, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := slow.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	// Nobody reads slow.Events(): its own join fills the buffer.
	for _, name := range []string{"a", "b", "c"} {
		startNode(t, testConfig(t, name, slow.Addr()))
	}
	waitFor(t, "slow sees all members although nobody reads its events", func() bool {
		return len(slow.Members()) == 4
	})
	if got := slow.Stats().DroppedEvents; got < 3 {
		t.Fatalf("DroppedEvents = %d, want at least 3 (three joins after a full buffer)", got)
	}
	ev := <-slow.Events()
	if ev.Type != EventJoin || ev.Meta.NodeID != "slow" || ev.Meta.Role != api.RoleWorker {
		t.Fatalf("buffered event = %+v, want slow's own join", ev)
	}
}
