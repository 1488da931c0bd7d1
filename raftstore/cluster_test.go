package raftstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/internal/poll"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, within, func() error {
		if cond() {
			return nil
		}
		return errors.New(what)
	})
}

// testCluster is real Raft members over TCP on loopback, each with its own
// data dir under the test's temp dir.
type testCluster struct {
	t     testing.TB
	base  string
	nodes []*Node // nil once closed
	addrs []string
	cfg   func(i int) Config
}

func memberConfig(base string, i int) Config {
	return Config{
		ID:       fmt.Sprintf("m%d", i),
		DataDir:  filepath.Join(base, fmt.Sprintf("m%d", i)),
		RaftAddr: "127.0.0.1:0",
	}
}

// newCluster starts n members: m0 bootstraps, the others join it.
func newCluster(t testing.TB, n int, tune func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, base: t.TempDir(), nodes: make([]*Node, n), addrs: make([]string, n)}
	c.cfg = func(i int) Config {
		cfg := memberConfig(c.base, i)
		if tune != nil {
			tune(&cfg)
		}
		return cfg
	}
	t.Cleanup(c.closeAll)
	for i := range n {
		cfg := c.cfg(i)
		cfg.Bootstrap = i == 0
		c.open(i, cfg)
		if i == 0 {
			c.waitLeader()
			continue
		}
		if err := c.nodes[0].AddVoter(t.Context(), cfg.ID, c.addrs[i]); err != nil {
			t.Fatalf("add m%d: %v", i, err)
		}
	}
	return c
}

func (c *testCluster) open(i int, cfg Config) {
	c.t.Helper()
	n, err := Open(cfg)
	if err != nil {
		c.t.Fatalf("open m%d: %v", i, err)
	}
	c.nodes[i], c.addrs[i] = n, n.RaftAddr()
}

// restart opens member i again from its data dir at its old address.
func (c *testCluster) restart(i int, tune func(*Config)) {
	c.t.Helper()
	cfg := c.cfg(i)
	cfg.RaftAddr = c.addrs[i]
	if tune != nil {
		tune(&cfg)
	}
	c.open(i, cfg)
}

func (c *testCluster) kill(i int) {
	c.t.Helper()
	if err := c.nodes[i].Close(); err != nil {
		c.t.Errorf("close m%d: %v", i, err)
	}
	c.nodes[i] = nil
}

func (c *testCluster) closeAll() {
	for i, n := range c.nodes {
		if n != nil {
			if err := n.Close(); err != nil {
				c.t.Errorf("close m%d: %v", i, err)
			}
			c.nodes[i] = nil
		}
	}
}

// waitLeader waits until one live member leads and returns its index.
func (c *testCluster) waitLeader() int {
	c.t.Helper()
	leader := -1
	waitFor(c.t, 15*time.Second, "no leader elected", func() bool {
		for i, n := range c.nodes {
			if n != nil && n.IsLeader() {
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}

func (c *testCluster) follower() int {
	for i, n := range c.nodes {
		if n != nil && !n.IsLeader() {
			return i
		}
	}
	c.t.Fatal("no live follower")
	return -1
}

// waitService waits until member i's state has the service named name.
func (c *testCluster) waitService(i int, name string) {
	c.t.Helper()
	waitFor(c.t, 15*time.Second, fmt.Sprintf("m%d never saw service %q", i, name), func() bool {
		return c.nodes[i].State().Read().ServiceByName(name) != nil
	})
}

func createService(t testing.TB, n *Node, name string) Response {
	t.Helper()
	res, err := n.Apply(t.Context(), CreateService{Service: testService("id-"+name, name, 1)})
	if err != nil {
		t.Fatalf("create %s on %s: %v", name, n.ID(), err)
	}
	return res
}
