package raftstore

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
)

func TestClusterFailover(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.waitLeader()
	res := createService(t, c.nodes[leader], "before")
	if svc, ok := res.Value.(*api.Service); !ok || svc.Spec.Name != "before" || res.Index == 0 {
		t.Errorf("response = %+v", res)
	}
	dup := CreateService{Service: testService("id-other", "before", 1)}
	if _, err := c.nodes[leader].Apply(t.Context(), dup); !errors.Is(err, ErrAlreadyExists) {
		t.Errorf("duplicate through raft: err = %v, want ErrAlreadyExists", err)
	}
	for i := range c.nodes {
		c.waitService(i, "before")
	}

	f := c.follower()
	if _, err := c.nodes[f].Apply(t.Context(), RemoveService{ID: "id-before"}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("apply on follower: err = %v, want ErrNotLeader", err)
	}
	if id, addr := c.nodes[f].Leader(); id != c.nodes[leader].ID() || addr != c.addrs[leader] {
		t.Errorf("follower sees leader %s at %s, want %s at %s", id, addr, c.nodes[leader].ID(), c.addrs[leader])
	}

	changes := make([]<-chan bool, len(c.nodes))
	for i, n := range c.nodes {
		var cancel func()
		changes[i], cancel = n.LeadershipChanges()
		defer cancel()
	}
	killedID := c.nodes[leader].ID()
	c.kill(leader)
	// The killed leader's channel holds its starting true, then false,
	// then closes.
	var got []bool
	for v := range changes[leader] {
		got = append(got, v)
	}
	if len(got) == 0 || got[len(got)-1] {
		t.Errorf("killed leader's channel gave %v, want ... false", got)
	}
	next := c.waitLeader()
	if next == leader {
		t.Fatal("the killed member still leads")
	}
	select {
	case v := <-changes[next]:
		if !v {
			t.Errorf("new leader's channel got %v, want true", v)
		}
	case <-time.After(10 * time.Second):
		t.Error("new leader's channel got nothing")
	}
	if c.nodes[next].State().Read().ServiceByName("before") == nil {
		t.Error("new leader lacks the committed service")
	}
	createService(t, c.nodes[next], "after")

	c.restart(leader, nil)
	if got := c.nodes[leader].ID(); got != killedID {
		t.Errorf("restarted member id %q, want %q", got, killedID)
	}
	c.waitService(leader, "after")
	members, err := c.nodes[next].Members()
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 3 {
		t.Errorf("members = %+v, want 3", members)
	}
}

func TestClusterFullRestart(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.waitLeader()
	var last Response
	for _, name := range []string{"a", "b", "c"} {
		last = createService(t, c.nodes[leader], name)
	}
	if _, err := c.nodes[leader].Apply(t.Context(), UpsertNode{Node: testNode("n1", api.NodeReady, api.AvailabilityActive)}); err != nil {
		t.Fatal(err)
	}
	for i := range c.nodes {
		c.waitService(i, "c")
	}
	want := dump(t, c.nodes[leader].State().Read())
	c.closeAll()
	for i := range c.nodes {
		c.restart(i, func(cfg *Config) { cfg.Bootstrap = true }) // ignored: state exists
	}
	leader = c.waitLeader()
	for i := range c.nodes {
		waitFor(t, 15*time.Second, "restarted member did not replay its log", func() bool {
			return c.nodes[i].State().Read().Node("n1") != nil
		})
		if got := dump(t, c.nodes[i].State().Read()); got != want {
			t.Errorf("m%d after restart:\n%s\nwant\n%s", i, got, want)
		}
	}
	if res := createService(t, c.nodes[leader], "d"); res.Index <= last.Index {
		t.Errorf("index after restart %d, before %d", res.Index, last.Index)
	}
}

func TestClusterNoQuorum(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.ApplyTimeout = time.Second })
	leader := c.waitLeader()
	createService(t, c.nodes[leader], "kept")
	for i := range c.nodes {
		c.waitService(i, "kept")
	}
	// Leave one member: once as a follower, once as the old leader.
	for _, survivorWasLeader := range []bool{false, true} {
		t.Run("survivor leader "+map[bool]string{false: "no", true: "yes"}[survivorWasLeader], func(t *testing.T) {
			leader := c.waitLeader()
			// A member restarted by the previous case may lead before it
			// has applied the log: the survivor must hold "kept" first.
			for i := range c.nodes {
				c.waitService(i, "kept")
			}
			survivor := c.follower()
			if survivorWasLeader {
				survivor = leader
			}
			for i := range c.nodes {
				if i != survivor {
					c.kill(i)
				}
			}
			// Until its heartbeat timeout passes, a follower still names
			// the dead leader (and Apply answers ErrNotLeader at once). The
			// old leader is asked at once: its entry is in flight when it
			// steps down.
			waitFor(t, 15*time.Second, "survivor still names a leader", func() bool {
				id, _ := c.nodes[survivor].Leader()
				return survivorWasLeader || id == ""
			})
			start := time.Now()
			before := c.nodes[survivor].Stats().LastIndex
			_, err := c.nodes[survivor].Apply(t.Context(), CreateService{Service: testService("id-lost", "lost", 1)})
			if !errors.Is(err, ErrNoLeader) {
				t.Fatalf("apply without quorum: err = %v, want ErrNoLeader", err)
			}
			// An entry that reached the log may still commit (the members
			// come back with it): the error must say so. A follower never
			// hands the entry to Raft: its error must not.
			inLog := c.nodes[survivor].Stats().LastIndex > before
			switch uncertain := errors.Is(err, ErrCommitUncertain); {
			case inLog && !uncertain:
				t.Errorf("the entry is in the log, but the error does not say it may commit: %v", err)
			case !survivorWasLeader && uncertain:
				t.Errorf("a follower never proposed the entry, but the error says it may commit: %v", err)
			}
			t.Logf("apply gave up after %s: %v", time.Since(start).Round(time.Millisecond), err)
			if c.nodes[survivor].State().Read().ServiceByName("kept") == nil {
				t.Error("survivor's state does not answer")
			}
			for i := range c.nodes {
				if i != survivor {
					c.restart(i, nil)
				}
			}
			c.waitLeader()
		})
	}
}

func TestForceNewCluster(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.waitLeader()
	createService(t, c.nodes[leader], "kept")
	for i := range c.nodes {
		c.waitService(i, "kept")
	}
	survivor := c.follower()
	c.closeAll()
	c.restart(survivor, func(cfg *Config) { cfg.ForceNewCluster = true })
	if got := c.waitLeader(); got != survivor {
		t.Fatalf("leader m%d, want the survivor m%d", got, survivor)
	}
	n := c.nodes[survivor]
	c.waitService(survivor, "kept")
	createService(t, n, "new")
	members, err := n.Members()
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].ID != n.ID() {
		t.Errorf("members = %+v, want only %s", members, n.ID())
	}
	// A later plain restart keeps the one-member cluster.
	c.kill(survivor)
	c.restart(survivor, nil)
	c.waitLeader()
	c.waitService(survivor, "new")
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	n, err := Open(Config{DataDir: filepath.Join(dir, "a"), RaftAddr: "127.0.0.1:0", Bootstrap: true})
	if err != nil {
		t.Fatal(err)
	}
	id := n.ID()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if id == "" {
		t.Fatal("no member id generated")
	}
	n, err = Open(Config{DataDir: filepath.Join(dir, "a"), RaftAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if n.ID() != id {
		t.Errorf("id after restart %q, want %q", n.ID(), id)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no data dir", Config{RaftAddr: "127.0.0.1:0"}},
		{"other member's dir", Config{ID: "other", DataDir: filepath.Join(dir, "a"), RaftAddr: "127.0.0.1:0"}},
		{"unspecified address", Config{DataDir: filepath.Join(dir, "b"), RaftAddr: "0.0.0.0:0"}},
		{"bad address", Config{DataDir: filepath.Join(dir, "c"), RaftAddr: "127.0.0.1:notaport"}},
		{"force without state", Config{DataDir: filepath.Join(dir, "d"), RaftAddr: "127.0.0.1:0", ForceNewCluster: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Open(tc.cfg)
			if err == nil {
				n.Close()
				t.Fatal("open succeeded")
			}
			t.Log(err)
		})
	}
}

func TestLeadershipAndSnapshots(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.SnapshotThreshold = 20
		cfg.SnapshotInterval = 100 * time.Millisecond
	})
	n := c.nodes[0]
	a, cancelA := n.LeadershipChanges()
	b, cancelB := n.LeadershipChanges()
	defer cancelB()
	for _, ch := range []<-chan bool{a, b} {
		if v := <-ch; !v {
			t.Fatal("subscriber of a leader did not start with true")
		}
	}
	cancelA()
	if _, ok := <-a; ok {
		t.Error("channel open after cancel")
	}
	if err := n.VerifyLeader(t.Context()); err != nil {
		t.Fatalf("verify leader: %v", err)
	}
	for i := range 100 {
		createService(t, n, "s"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	snapDir := filepath.Join(c.base, "m0", "snapshots")
	waitFor(t, 15*time.Second, "no snapshot taken", func() bool {
		entries, _ := os.ReadDir(snapDir)
		return len(entries) > 0
	})
	want := dump(t, n.State().Read())
	st := n.Stats()
	if st.State != "leader" || st.AppliedIndex < 100 || st.Term == 0 {
		t.Errorf("stats = %+v", st)
	}
	c.kill(0)
	if v, ok := <-b; ok && v {
		t.Errorf("after close: got %v, want false or closed", v)
	}
	c.restart(0, nil)
	c.waitLeader()
	waitFor(t, 15*time.Second, "state not restored", func() bool {
		return len(c.nodes[0].State().Read().Services()) == 100
	})
	if got := dump(t, c.nodes[0].State().Read()); got != want {
		t.Errorf("restored from snapshot + log differs")
	}
	entries, _ := os.ReadDir(snapDir)
	// A snapshot being written (a .tmp directory) is not one kept.
	entries = slices.DeleteFunc(entries, func(e os.DirEntry) bool { return strings.HasSuffix(e.Name(), ".tmp") })
	if len(entries) > 2 {
		t.Errorf("%d snapshots kept, want at most 2", len(entries))
	}
	if !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.IsDir() }) {
		t.Errorf("no snapshot directory in %s", snapDir)
	}
}
