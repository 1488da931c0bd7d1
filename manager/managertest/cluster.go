// Package managertest runs a cluster of real managers in one test process:
// real Raft over TCP, real gRPC, on ephemeral loopback ports, each manager
// with its own temporary data dir. Tests of other packages use it to get a
// working control plane; failure tests kill and restart managers.
package managertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/shoal-sched/shoal/internal/poll"
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// Options tune a test cluster.
type Options struct {
	// Raft timeouts; the zero value means FastRaft.
	Raft manager.RaftTiming
	// DefaultRaft runs with shoal-manager's default Raft timings (those
	// raftstore picks for a LAN) instead; Raft is then ignored.
	DefaultRaft bool
	// LeaderTimeout bounds how long a request waits for a leader (zero:
	// the manager default).
	LeaderTimeout time.Duration
	// NoGossip runs the managers without gossip (by default each gossips
	// on a loopback port, as agents expect).
	NoGossip bool
	// Logger receives the managers' logs; nil discards them (set
	// SHOAL_TEST_LOG=1 to send them to stderr).
	Logger *slog.Logger
	// Edit, if set, changes every manager's config before its first start.
	Edit func(*manager.Config)
	// StartTimeout bounds starting the cluster (default 30 s).
	StartTimeout time.Duration
	// Proxied puts a loopback TCP proxy in front of every manager's Raft
	// and gRPC listeners and has the manager advertise the proxies, so
	// that Cut and Heal can partition a running manager from its peers.
	// Clients from Client and friends still dial the managers directly, as
	// a client on the manager's side of a partition would. Gossip is not
	// proxied: use NoGossip with it for a complete cut.
	Proxied bool
	// Plaintext runs the managers without TLS and authorisation, for
	// benchmarks that measure what TLS costs. By default every link is
	// mutual TLS with certificates of the cluster's own CA (the first
	// manager makes it, the others join with the manager token).
	Plaintext bool
}

// FastRaft are Raft timeouts for loopback tests: elections in well under
// a second, still far above loopback round trips on a loaded machine.
var FastRaft = manager.RaftTiming{
	HeartbeatTimeout:   300 * time.Millisecond,
	ElectionTimeout:    300 * time.Millisecond,
	LeaderLeaseTimeout: 150 * time.Millisecond,
	ApplyTimeout:       3 * time.Second,
}

// Cluster is a set of in-process managers.
type Cluster struct {
	t       testing.TB
	opts    Options
	members []*member
	// operator is the certificate the clients dial with (issued by the
	// cluster's CA at the first dial; nil in plaintext).
	operator *pki.Credentials

	mu      sync.Mutex
	raftIDs map[string]string // bound Raft address -> member id, for the Raft proxies
}

// member is one manager slot: its data dir and addresses stay the same
// across restarts.
type member struct {
	dataDir  string
	cfg      manager.Config
	mu       sync.Mutex
	m        *manager.Manager
	stop     context.CancelFunc
	done     chan error
	conn     *grpc.ClientConn
	sockConn *grpc.ClientConn
	extra    []*grpc.ClientConn
	// raftProxy and grpcProxy stand in front of the manager (Proxied).
	raftProxy, grpcProxy *proxy
	id                   string // Raft member id, known once started
}

// StartCluster starts n managers: the first bootstraps, the others join
// through it. It returns once every manager is a Raft voter and recorded
// in the state. Everything is stopped and removed when the test ends.
func StartCluster(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("StartCluster: n = %d; want at least 1", n)
	}
	opts = opts.withDefaults()
	c := &Cluster{t: t, opts: opts, raftIDs: map[string]string{}}
	t.Cleanup(c.stopAll)
	for i := range n {
		c.members = append(c.members, c.newMember(i))
		if i > 0 {
			c.members[i].cfg.Join = c.AdvertiseAddr(0)
			c.members[i].cfg.Token = c.JoinToken(pki.RoleManager)
		}
		c.start(i, nil)
		if i == 0 {
			c.WaitLeader(opts.StartTimeout)
		}
	}
	c.WaitFor(opts.StartTimeout, func() error { return c.checkAllRecorded(n) })
	return c
}

func (o Options) withDefaults() Options {
	switch {
	case o.DefaultRaft:
		o.Raft = manager.RaftTiming{}
	case o.Raft == (manager.RaftTiming{}):
		o.Raft = FastRaft
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		var w io.Writer = io.Discard
		if os.Getenv("SHOAL_TEST_LOG") != "" {
			w = os.Stderr
		}
		o.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return o
}

func (c *Cluster) newMember(i int) *member {
	// A short path keeps the control socket under the unix path limit.
	dir, err := os.MkdirTemp("", "shoal-mgr-")
	if err != nil {
		c.t.Fatalf("manager %d: data dir: %v", i, err)
	}
	c.t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := manager.Config{
		DataDir: dir, Addr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
		Raft: c.opts.Raft, LeaderTimeout: c.opts.LeaderTimeout,
		Logger:    c.opts.Logger.With("test_manager", i),
		Plaintext: c.opts.Plaintext,
	}
	if c.opts.Proxied {
		// Raft dials from the IP of its listener: one loopback IP per
		// manager tells the Raft proxies who sent a connection, which
		// they cannot read inside TLS.
		cfg.RaftAddr = fmt.Sprintf("127.0.0.%d:0", 10+i)
	}
	if !c.opts.NoGossip {
		cfg.GossipAddr = "127.0.0.1:0"
	}
	if c.opts.Edit != nil {
		c.opts.Edit(&cfg)
	}
	mb := &member{dataDir: dir, cfg: cfg}
	if c.opts.Proxied {
		c.proxy(i, mb)
	}
	return mb
}

// proxy puts proxies in front of member i and has it advertise them.
func (c *Cluster) proxy(i int, mb *member) {
	var err error
	if mb.raftProxy, err = newProxy(raftSender(c.raftAddrs)); err == nil {
		mb.grpcProxy, err = newProxy(nil)
	}
	if err != nil {
		c.t.Fatalf("manager %d: proxy: %v", i, err)
	}
	mb.cfg.AdvertiseAddr, mb.cfg.RaftAdvertiseAddr = mb.grpcProxy.addr(), mb.raftProxy.addr()
}

// raftAddrs maps the bound Raft address of every manager started so far
// to its member id.
func (c *Cluster) raftAddrs() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.raftIDs)
}

// start runs manager i (again, after a kill) from its data dir. The first
// start fixes its ports; later starts reuse them, as a restarted process
// would. edit, if not nil, changes the config of this start only.
func (c *Cluster) start(i int, edit func(*manager.Config)) {
	mb := c.members[i]
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.m != nil {
		c.t.Fatalf("manager %d is already running", i)
	}
	cfg := mb.cfg
	if edit != nil {
		edit(&cfg)
	}
	m, err := manager.Open(c.t.Context(), cfg)
	if err != nil {
		c.t.Fatalf("manager %d: %v", i, err)
	}
	mb.cfg.Addr, mb.cfg.RaftAddr, mb.cfg.GossipAddr = m.Addr(), m.RaftAddr(), m.GossipAddr()
	if mb.raftProxy != nil {
		mb.raftProxy.setTarget(m.RaftAddr())
		mb.grpcProxy.setTarget(m.Addr())
	}
	mb.id = m.ID()
	c.mu.Lock()
	c.raftIDs[m.RaftAddr()] = m.ID()
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(c.t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	mb.m, mb.stop, mb.done = m, cancel, done
}

// AddManager starts one more manager that joins through manager via (a
// follower forwards the join to the leader), waits until every manager
// records it, and returns its index.
func (c *Cluster) AddManager(via int) int {
	c.t.Helper()
	i := len(c.members)
	c.members = append(c.members, c.newMember(i))
	c.members[i].cfg.Join = c.AdvertiseAddr(via)
	c.members[i].cfg.Token = c.JoinToken(pki.RoleManager)
	c.start(i, nil)
	c.WaitFor(c.opts.StartTimeout, func() error { return c.checkAllRecorded(i + 1) })
	return i
}

// JoinToken waits until a running manager's state holds the cluster's CA
// and returns the join token for role (pki.RoleWorker or
// pki.RoleManager).
func (c *Cluster) JoinToken(role string) string {
	c.t.Helper()
	var tok string
	c.WaitFor(c.opts.StartTimeout, func() error {
		var errs []error
		for i := range c.members {
			m := c.Manager(i)
			if m == nil {
				continue
			}
			t, err := m.JoinToken(role)
			if err == nil {
				tok = t
				return nil
			}
			errs = append(errs, err)
		}
		return fmt.Errorf("no join token yet: %w", errors.Join(errs...))
	})
	return tok
}

// Restart starts a killed or stopped manager again from its data dir.
func (c *Cluster) Restart(i int) { c.start(i, nil) }

// RestartOnNewAddr restarts manager i from its data dir on a new gRPC
// port (its Raft address stays), as after a move; Client(i) then follows.
func (c *Cluster) RestartOnNewAddr(i int) {
	mb := c.members[i]
	mb.mu.Lock()
	if mb.conn != nil {
		mb.extra = append(mb.extra, mb.conn)
		mb.conn = nil
	}
	mb.mu.Unlock()
	c.start(i, func(cfg *manager.Config) { cfg.Addr = "127.0.0.1:0" })
}

// RestartForceNewCluster restarts manager i with --force-new-cluster: a
// lone survivor becomes a one-member cluster with all its state.
func (c *Cluster) RestartForceNewCluster(i int) {
	c.start(i, func(cfg *manager.Config) {
		cfg.ForceNewCluster = true
		cfg.Join = ""
	})
}

// Kill stops manager i abruptly (listeners and Raft close at once, no
// gossip leave) and waits until it has stopped.
func (c *Cluster) Kill(i int) { c.halt(i, true) }

// Stop stops manager i cleanly and waits until it has stopped.
func (c *Cluster) Stop(i int) { c.halt(i, false) }

func (c *Cluster) halt(i int, crash bool) {
	mb := c.members[i]
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.m == nil {
		return
	}
	if crash {
		mb.m.Crash()
	} else {
		mb.stop()
	}
	select {
	case err := <-mb.done:
		if err != nil {
			c.t.Errorf("manager %d stopped with: %v", i, err)
		}
	case <-time.After(30 * time.Second):
		c.t.Errorf("manager %d did not stop within 30s", i)
	}
	mb.stop()
	mb.m = nil
}

func (c *Cluster) stopAll() {
	for i := range c.members {
		c.halt(i, false)
	}
	for i, mb := range c.members {
		for _, conn := range append([]*grpc.ClientConn{mb.conn, mb.sockConn}, mb.extra...) {
			if conn != nil {
				conn.Close()
			}
		}
		if mb.raftProxy == nil {
			continue
		}
		mb.raftProxy.close()
		mb.grpcProxy.close()
		if n := mb.raftProxy.unattributedConns(); n > 0 {
			c.t.Errorf("manager %d: the Raft proxy could not tell the sender of %d connections, so cuts were not complete", i, n)
		}
	}
}

// N is the number of manager slots.
func (c *Cluster) N() int { return len(c.members) }

// Manager returns manager i, or nil while it is not running.
func (c *Cluster) Manager(i int) *manager.Manager {
	mb := c.members[i]
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.m
}

// Running reports whether manager i runs.
func (c *Cluster) Running(i int) bool { return c.Manager(i) != nil }

// DataDir is manager i's data dir.
func (c *Cluster) DataDir(i int) string { return c.members[i].dataDir }

// Addr is manager i's gRPC address (stable across restarts).
func (c *Cluster) Addr(i int) string { return c.members[i].cfg.Addr }

// AdvertiseAddr is the gRPC address manager i's peers dial: its proxy's
// when the cluster is Proxied, else Addr.
func (c *Cluster) AdvertiseAddr(i int) string {
	if a := c.members[i].cfg.AdvertiseAddr; a != "" {
		return a
	}
	return c.members[i].cfg.Addr
}

// GossipAddr is manager i's gossip address ("" without gossip).
func (c *Cluster) GossipAddr(i int) string { return c.members[i].cfg.GossipAddr }

// Client returns a Control client for manager i over TCP. It stays valid
// across restarts of the manager.
func (c *Cluster) Client(i int) shoalpb.ControlClient {
	// The operator certificate is made before the member lock is
	// taken: making it reads the managers, which takes their locks.
	op := c.operatorCredentials()
	mb := c.members[i]
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.conn == nil {
		mb.conn = c.dial(mb.cfg.Addr, op)
	}
	return shoalpb.NewControlClient(mb.conn)
}

// NewClient returns a Control client for manager i over a connection of
// its own (for benchmarks that want one connection per client).
func (c *Cluster) NewClient(i int) shoalpb.ControlClient {
	// The operator certificate is made before the member lock is
	// taken: making it reads the managers, which takes their locks.
	op := c.operatorCredentials()
	mb := c.members[i]
	mb.mu.Lock()
	defer mb.mu.Unlock()
	conn := c.dial(mb.cfg.Addr, op)
	mb.extra = append(mb.extra, conn)
	return shoalpb.NewControlClient(conn)
}

// SocketClient returns a Control client for manager i over its unix socket.
func (c *Cluster) SocketClient(i int) shoalpb.ControlClient {
	// The operator certificate is made before the member lock is
	// taken: making it reads the managers, which takes their locks.
	op := c.operatorCredentials()
	mb := c.members[i]
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.sockConn == nil {
		mb.sockConn = c.dial("unix://"+filepath.Join(mb.dataDir, "control.sock"), op)
	}
	return shoalpb.NewControlClient(mb.sockConn)
}

func (c *Cluster) dial(target string, op *pki.Credentials) *grpc.ClientConn {
	conn, err := grpc.NewClient(target, append(c.DialOptions(op),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))...)
	if err != nil {
		c.t.Fatalf("dial %s: %v", target, err)
	}
	return conn
}

// Leader returns the index of the running manager that is the Raft
// leader now, or -1.
func (c *Cluster) Leader() int {
	for i := range c.members {
		if m := c.Manager(i); m != nil {
			if n := m.Raft(); n != nil && n.IsLeader() {
				return i
			}
		}
	}
	return -1
}

// TransferLeadership has the leader hand leadership to manager to, and
// waits until to leads. It retries while a transfer cannot start (an
// election runs, or to is still catching up).
func (c *Cluster) TransferLeadership(to int, timeout time.Duration) {
	c.t.Helper()
	target := c.Manager(to)
	if target == nil {
		c.t.Fatalf("transfer leadership to manager %d: it is not running", to)
	}
	c.WaitFor(timeout, func() error {
		l := c.Leader()
		switch {
		case l == to:
			return nil
		case l < 0:
			return errors.New("no leader to hand over from")
		}
		ctx, cancel := context.WithTimeout(c.t.Context(), timeout)
		defer cancel()
		if err := c.Manager(l).Raft().TransferLeadership(ctx, target.ID()); err != nil {
			return fmt.Errorf("manager %d to %d: %w", l, to, err)
		}
		if l := c.Leader(); l != to {
			return fmt.Errorf("manager %d leads after the transfer to %d", l, to)
		}
		return nil
	})
}

// WaitLeader waits until a running manager leads and returns its index.
func (c *Cluster) WaitLeader(timeout time.Duration) int {
	c.t.Helper()
	var leader int
	c.WaitFor(timeout, func() error {
		leader = c.Leader()
		if leader < 0 {
			return errors.New("no running manager is the leader")
		}
		return nil
	})
	return leader
}

// WaitFor polls cond until it returns nil, and fails the test
// with cond's last error if that does not happen within timeout.
func (c *Cluster) WaitFor(timeout time.Duration, cond func() error) {
	c.t.Helper()
	WaitFor(c.t, timeout, cond)
}

// WaitFor polls cond until it returns nil, and fails the test with cond's
// last error if that does not happen within timeout (poll.Until).
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	poll.Until(t, timeout, cond)
}

// checkAllRecorded reports whether the leader has n voters in its Raft
// configuration and every manager's local state records the cluster and
// all n managers' addresses (so no start-up write is still to come).
func (c *Cluster) checkAllRecorded(n int) error {
	for i := range c.members {
		m := c.Manager(i)
		if m == nil || m.Raft() == nil {
			return fmt.Errorf("manager %d is not running", i)
		}
		v := m.Raft().State().Read()
		if v.Cluster().ID == "" {
			return fmt.Errorf("manager %d has no cluster id yet", i)
		}
		for j := range c.members {
			rec, ok := v.Manager(c.Manager(j).ID())
			if !ok || rec.Addr != c.AdvertiseAddr(j) {
				return fmt.Errorf("manager %d does not record manager %d's address yet", i, j)
			}
		}
	}
	l := c.Leader()
	if l < 0 {
		return errors.New("no leader")
	}
	node := c.Manager(l).Raft()
	members, err := node.Members()
	if err != nil {
		return err
	}
	voters := 0
	for _, m := range members {
		if m.Voter {
			voters++
		}
		if err := c.checkProxied(m.ID, m.RaftAddr); err != nil {
			return err
		}
	}
	if voters != n {
		return fmt.Errorf("%d voters in the raft configuration, want %d", voters, n)
	}
	if got := len(node.State().Read().Managers()); got != n {
		return fmt.Errorf("%d managers recorded in the state, want %d", got, n)
	}
	return nil
}

// checkProxied reports whether member id is in the Raft configuration at
// its proxy's address (always true unless Proxied): only then does all
// Raft traffic to it pass the proxy that Cut severs.
func (c *Cluster) checkProxied(id, raftAddr string) error {
	for i, mb := range c.members {
		if mb.id == id && mb.raftProxy != nil && raftAddr != mb.raftProxy.addr() {
			return fmt.Errorf("manager %d is in the raft configuration at %s, not at its proxy %s", i, raftAddr, mb.raftProxy.addr())
		}
	}
	return nil
}

// Cut partitions manager i from the other managers while it keeps
// running: its proxies close every connection and refuse new ones, and the
// other managers' Raft proxies do the same with the connections it opens.
// (Its own forwarding calls to the other managers' gRPC addresses are not
// cut: gRPC connections do not name their sender.) Clients that dial it
// directly still reach it. Proxied clusters only.
func (c *Cluster) Cut(i int) { c.setCut(i, true) }

// Heal undoes Cut(i).
func (c *Cluster) Heal(i int) { c.setCut(i, false) }

func (c *Cluster) setCut(i int, cut bool) {
	c.t.Helper()
	mb := c.members[i]
	if mb.raftProxy == nil {
		c.t.Fatalf("Cut/Heal of manager %d: the cluster was not started with Options.Proxied", i)
	}
	for j, other := range c.members {
		switch {
		case j == i && cut:
			mb.raftProxy.sever()
			mb.grpcProxy.sever()
		case j == i:
			mb.raftProxy.heal()
			mb.grpcProxy.heal()
		case cut:
			other.raftProxy.block(mb.id)
		default:
			other.raftProxy.unblock(mb.id)
		}
	}
}
