package membership

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
)

func TestClusterJoinSharesMeta(t *testing.T) {
	nodes := startCluster(t, 5)
	for _, nd := range nodes {
		host, port, err := net.SplitHostPort(nd.Addr())
		if err != nil || host != "127.0.0.1" || port == "0" {
			t.Fatalf("Addr() = %q, want 127.0.0.1 and the bound port", nd.Addr())
		}
		// Polled, not read once: on a loaded machine a member may be
		// suspected for a moment after the cluster first converged.
		var diff string
		waitFor(t, nd.LocalMeta().NodeID+" sees every member's metadata, sorted by node id", func() bool {
			diff = ""
			members := nd.Members()
			var ids []string
			for i, m := range members {
				ids = append(ids, m.NodeID)
				want := testMeta(fmt.Sprintf("n%d", i))
				want.Version = MetaVersion
				if !reflect.DeepEqual(m, want) {
					diff += fmt.Sprintf("member %d is %+v, want %+v; ", i, m, want)
				}
			}
			if len(members) != len(nodes) {
				diff += fmt.Sprintf("%d members, want %d; ", len(members), len(nodes))
			}
			if !slices.IsSorted(ids) {
				diff += fmt.Sprintf("Members() not sorted by node id: %v", ids)
			}
			return diff == ""
		}, func() string { return diff })
	}
	// Each node got a Join event for every member, itself included.
	for _, nd := range nodes {
		for i := range nodes {
			id := fmt.Sprintf("n%d", i)
			waitFor(t, nd.LocalMeta().NodeID+" has a join event for "+id, func() bool { return nd.rec.has(id, EventJoin) })
		}
	}
}

func TestUpdateMetaPropagates(t *testing.T) {
	nodes := startCluster(t, 4)
	changed := testMeta("n2")
	changed.NanoCPUs = 4_000_000_000
	changed.Labels = map[string]string{"name": "n2", "disk": "ssd"}
	if err := nodes[2].UpdateMeta(changed); err != nil {
		t.Fatalf("UpdateMeta: %v", err)
	}
	changed.Version = MetaVersion
	for _, nd := range nodes {
		waitFor(t, nd.LocalMeta().NodeID+" sees n2's new metadata", func() bool {
			return slices.ContainsFunc(nd.Members(), func(m Meta) bool { return reflect.DeepEqual(m, changed) })
		})
		waitFor(t, nd.LocalMeta().NodeID+" got an update event for n2", func() bool {
			return slices.ContainsFunc(nd.rec.about("n2"), func(ev Event) bool {
				return ev.Type == EventUpdate && reflect.DeepEqual(ev.Meta, changed) && ev.Addr == nodes[2].Addr()
			})
		})
	}
}

func TestUpdateMetaRefusesBadMeta(t *testing.T) {
	nd := startNode(t, testConfig(t, "solo"))
	before := nd.LocalMeta()
	tooBig := testMeta("solo")
	tooBig.Labels = map[string]string{"blob": strings.Repeat("z", MetaMaxSize)}
	leaving := testMeta("solo")
	leaving.Leaving = true
	badRole := testMeta("solo")
	badRole.Role = "boss"
	for _, tc := range []struct {
		name string
		meta Meta
		want error
	}{
		{"too large", tooBig, ErrMetaTooLarge},
		{"other node id", testMeta("other"), ErrInvalidMeta},
		{"leaving flag", leaving, ErrInvalidMeta},
		{"bad role", badRole, ErrInvalidMeta},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := nd.UpdateMeta(tc.meta); !errors.Is(err, tc.want) {
				t.Fatalf("UpdateMeta error = %v, want %v", err, tc.want)
			}
			if got := nd.LocalMeta(); !reflect.DeepEqual(got, before) {
				t.Fatalf("refused update changed LocalMeta to %+v", got)
			}
			got := nd.Members()
			if len(got) != 1 || got[0].Role != api.RoleWorker || got[0].Labels["blob"] != "" {
				t.Fatalf("refused update changed what is advertised: %+v", got)
			}
		})
	}
}

func TestShutdownReportsFail(t *testing.T) {
	nodes := startCluster(t, 4)
	victim := nodes[3]
	if err := victim.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, nd := range nodes[:3] {
		waitFor(t, nd.LocalMeta().NodeID+" reports n3 failed", func() bool { return nd.rec.has("n3", EventFail) })
		if nd.rec.has("n3", EventLeave) {
			t.Errorf("%s reported a leave for n3, which was killed: %v", nd.LocalMeta().NodeID, eventTypes(nd.rec.about("n3")))
		}
		fail := nd.rec.about("n3")[len(nd.rec.about("n3"))-1]
		if fail.Addr != victim.Addr() || fail.Meta.Hostname != "n3.test" {
			t.Errorf("fail event carries %q %+v, want n3's address %q and metadata", fail.Addr, fail.Meta, victim.Addr())
		}
		waitFor(t, nd.LocalMeta().NodeID+" drops n3 from Members", func() bool {
			return !slices.ContainsFunc(nd.Members(), func(m Meta) bool { return m.NodeID == "n3" })
		})
	}
}

func TestGracefulLeaveReportsLeave(t *testing.T) {
	nodes := startCluster(t, 4)
	leaver := nodes[3]
	// Only events after this count: under heavy load a live member can be
	// declared dead and rejoin, which is not what this test is about.
	start := time.Now()
	if err := leaver.Leave(5 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := leaver.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, nd := range nodes[:3] {
		waitFor(t, nd.LocalMeta().NodeID+" reports n3 left", func() bool {
			_, left := nd.rec.firstAfter("n3", EventLeave, start)
			_, failed := nd.rec.firstAfter("n3", EventFail, start)
			return left || failed
		})
		if _, failed := nd.rec.firstAfter("n3", EventFail, start); failed {
			t.Errorf("%s reported a graceful leave as a failure: %v", nd.LocalMeta().NodeID, eventTypes(nd.rec.about("n3")))
		}
	}
}

func TestLifecycleErrors(t *testing.T) {
	nd := startNode(t, testConfig(t, "solo"))
	if err := nd.Leave(0); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Leave(0) = %v, want ErrInvalidConfig", err)
	}
	if err := nd.Leave(time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := nd.Leave(time.Second); err != nil {
		t.Fatalf("second Leave: %v", err)
	}
	if err := nd.UpdateMeta(testMeta("solo")); !errors.Is(err, ErrLeft) {
		t.Fatalf("UpdateMeta after Leave = %v, want ErrLeft", err)
	}
	if _, err := nd.Join([]string{"127.0.0.1:1"}); !errors.Is(err, ErrLeft) {
		t.Fatalf("Join after Leave = %v, want ErrLeft", err)
	}
	if err := nd.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := nd.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := nd.Leave(time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("Leave after Close = %v, want ErrClosed", err)
	}
	if err := nd.UpdateMeta(testMeta("solo")); !errors.Is(err, ErrClosed) {
		t.Fatalf("UpdateMeta after Close = %v, want ErrClosed", err)
	}
	select {
	case <-nd.drained:
	case <-time.After(waitTimeout):
		t.Fatal("Events() still open after Close")
	}
}

func TestJoinLater(t *testing.T) {
	a := startNode(t, testConfig(t, "a"))
	b := startNode(t, testConfig(t, "b"))
	if got := len(b.Members()); got != 1 {
		t.Fatalf("b alone sees %d members, want 1", got)
	}
	n, err := b.Join([]string{a.Addr()})
	if err != nil || n != 1 {
		t.Fatalf("Join = %d, %v; want 1, nil", n, err)
	}
	waitConverged(t, []*node{a, b}, 2)

	dead := closedPort(t)
	for _, tc := range []struct {
		name  string
		addrs []string
		want  error
	}{
		{"nobody listening", []string{dead}, ErrJoin},
		{"empty list", nil, ErrInvalidConfig},
		{"empty address", []string{""}, ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n, err := b.Join(tc.addrs); !errors.Is(err, tc.want) || n != 0 {
				t.Fatalf("Join(%q) = %d, %v; want 0, %v", tc.addrs, n, err, tc.want)
			}
		})
	}
}

// closedPort returns a 127.0.0.1 address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestContextEndStopsMember(t *testing.T) {
	peer := startNode(t, testConfig(t, "peer"))
	ctx, cancel := context.WithCancel(t.Context())
	m, err := Start(ctx, testConfig(t, "short", peer.Addr()))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		// Close is idempotent: it must report nothing after ctx closed it.
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	waitFor(t, "peer sees short", func() bool { return len(peer.Members()) == 2 })
	cancel()
	waitFor(t, "Events closed after ctx ended", func() bool {
		for {
			select {
			case _, open := <-m.Events():
				if !open {
					return true
				}
			default:
				return false
			}
		}
	})
	waitFor(t, "peer reports short failed", func() bool { return peer.rec.has("short", EventFail) })
}

func TestAdvertiseAddr(t *testing.T) {
	for _, tc := range []struct {
		name      string
		advertise string
	}{
		{"bound port", "127.0.0.1:0"},
		{"host only", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "adv")
			cfg.AdvertiseAddr = tc.advertise
			nd := startNode(t, cfg)
			host, port, err := net.SplitHostPort(nd.Addr())
			if err != nil || host != "127.0.0.1" || port == "0" {
				t.Fatalf("Addr() = %q, want 127.0.0.1 with the bound port", nd.Addr())
			}
			peer := startNode(t, testConfig(t, "peer", nd.Addr()))
			waitConverged(t, []*node{nd, peer}, 2)
		})
	}
}

// TestViewRemembersDepartures: a member that failed is in View's Gone, not
// in Alive; once it comes back it is alive again and no longer gone. A
// member that left is gone as having left.
func TestViewRemembersDepartures(t *testing.T) {
	nodes := startCluster(t, 4)
	observer := nodes[0]
	gone := func(id string) (Departure, bool) {
		for _, g := range observer.View().Gone {
			if g.Meta.NodeID == id {
				return g, true
			}
		}
		return Departure{}, false
	}
	alive := func(id string) bool {
		return slices.ContainsFunc(observer.View().Alive, func(m Meta) bool { return m.NodeID == id })
	}
	if err := nodes[2].Leave(5 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := nodes[3].Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitFor(t, "n0's view holds n2 and n3 as gone", func() bool {
		_, g2 := gone("n2")
		_, g3 := gone("n3")
		return g2 && g3 && !alive("n2") && !alive("n3")
	}, func() string { return fmt.Sprintf("%+v", observer.View()) })
	if g, _ := gone("n3"); g.Left || g.Meta.Hostname != "n3.test" || g.At.IsZero() {
		t.Errorf("n3 (killed) is gone as %+v, want a failure with its metadata and a time", g)
	}
	if g, _ := gone("n2"); !g.Left {
		t.Errorf("n2 (left) is gone as %+v, want Left", g)
	}
	// n3 comes back (a new process: a new address, the same name).
	startNode(t, testConfig(t, "n3", observer.Addr()))
	waitFor(t, "n0's view holds n3 alive again", func() bool {
		_, g3 := gone("n3")
		return alive("n3") && !g3
	}, func() string { return fmt.Sprintf("%+v", observer.View()) })
	if _, g2 := gone("n2"); !g2 {
		t.Error("n2 is no longer gone, though it never came back")
	}
}
