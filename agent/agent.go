// Package agent runs on every worker host: it joins the cluster's gossip,
// holds one session with the leader's dispatcher, runs the tasks assigned
// to its node through a Runtime, and reports their status.
//
// Tasks move through a one-step state machine that never goes backwards
// (assigned → accepted → preparing → starting → running → complete|failed,
// or rejected, or shutdown on request). The agent keeps its assignment set
// in its data dir, so a restarted agent adopts the containers it left
// running instead of starting them again, and a lost session is reopened
// (to whichever manager leads now) without touching running tasks.
package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// Defaults for the zero values of Config.
const (
	// DefaultHeartbeatInterval paces the heartbeats of a session. The
	// leader answers each one, and the agent gives up on a leader that is
	// silent for three intervals (900 ms): that is how it notices a dead or
	// cut-off leader and moves to the new one. The leader in turn tells a
	// starved agent from a dead one by its heartbeats (its failConfirm is
	// 800 ms, its session TTL 2 s).
	DefaultHeartbeatInterval = 300 * time.Millisecond
	// MaxHeartbeatInterval keeps heartbeats well inside the dispatcher's
	// failConfirm.
	MaxHeartbeatInterval = 500 * time.Millisecond
	// DefaultStatusDelay is how long the agent collects status changes
	// before sending them in one batch.
	DefaultStatusDelay = 5 * time.Millisecond
)

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("invalid agent config")

// GossipTimings tunes failure detection (zero: the membership defaults).
type GossipTimings struct {
	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	SuspicionMult  int
	GossipInterval time.Duration
}

// Config configures an agent.
type Config struct {
	// DataDir keeps the node ID and the assignment set.
	DataDir string
	// NoConnectAhead leaves out the connections ahead to the managers the
	// agent holds no session with (see connCache.warm): for a process
	// that simulates thousands of hosts under one open-file limit.
	NoConnectAhead bool
	// NodeID, when set, is the node's ID instead of the one kept in
	// DataDir: a host that runs a manager is one node, named by the
	// manager's Raft id (see manager.HostCredentials). With Credentials
	// it must be theirs.
	NodeID string
	// Join lists managers' gRPC addresses (host:port); any one will do.
	Join []string
	// AdvertiseAddr is where the Agent service listens and what the node
	// advertises (host:port; port 0 picks a free one).
	AdvertiseAddr string
	// GossipAddr is the gossip bind address (host:port). Empty: no gossip,
	// liveness then rests on the dispatcher session alone.
	GossipAddr string
	// GossipKey is a gossip encryption key (16, 24 or 32 bytes) to gossip
	// with before the first session, or nil. Without it the agent starts
	// gossip once the leader sent the cluster's keys on its session; with
	// it, those keys replace it as soon as they arrive.
	GossipKey []byte
	Gossip    GossipTimings
	// LeaveOnStop makes the agent leave gossip gracefully when Run ends, so
	// the leader marks the node down at once as having left and its tasks
	// are placed elsewhere.
	LeaveOnStop bool
	// RestartHold, when LeaveOnStop is off, is what the agent announces
	// when Run ends: it restarts and will be back within RestartHold. The
	// leader keeps the node's tasks (their containers run on) and marks the
	// node down only if it is not back by then. Zero announces nothing: the
	// agent just goes silent, as if it had died. At most api.MaxRestartHold.
	RestartHold time.Duration
	// Hostname defaults to the host's name.
	Hostname string
	Runtime  Runtime
	// DataPlane wires tasks' networks (nil: every task on the host network).
	DataPlane DataPlane
	// Resources offered to the scheduler; zero fields are detected.
	Resources api.Resources
	Labels    map[string]string
	// HeartbeatInterval paces heartbeats on an idle session.
	HeartbeatInterval time.Duration
	// StatusDelay is how long status changes are collected before sending.
	StatusDelay time.Duration
	Logger      *slog.Logger
	// Credentials are the node's key, certificate and trusted roots
	// (pki/join.Obtain gets them with a join token); the node ID is the
	// certificate's, and the agent renews the certificate before it
	// expires. The session is mutual TLS with them, and the Agent service
	// serves managers only. Required unless Plaintext.
	Credentials *pki.Credentials
	// SharedCredentialsDir, when set, is where Credentials were read from
	// and are kept by another process: the manager on this host, whose
	// certificate the agent presents (the host is one node). The agent then
	// does not renew them (the manager does) and reloads them from this dir
	// every CertStatusInterval instead.
	SharedCredentialsDir string
	// CertStatusInterval is how often the agent asks the CA whether to
	// renew its certificate early (a root rotation); zero: a minute.
	CertStatusInterval time.Duration
	// Plaintext runs without TLS and authorisation, for benchmarks that
	// measure what TLS costs; no flag sets it.
	Plaintext bool
	// Metrics receives the agent's figures (nil: none are kept).
	Metrics *Metrics
}

// Agent is one worker node's agent.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	nodeID string
	lis    net.Listener
	addr   string
	store  *taskStore
	w      *worker
	grpc   *grpc.Server

	mu       sync.Mutex
	leader   string   // gRPC address of the leader, as last heard
	managers []string // managers' gRPC addresses, as last heard
	gossip   gossipMember
	// rejoin asks the gossip member to join the managers again (a new
	// session may follow a partition the gossip views have not healed).
	rejoin chan struct{}
	// sessionsDone is closed when the sessions have ended (after a restart
	// notice): gossip stops only then, so that the leader hears of the
	// restart before gossip declares the node dead.
	sessionsDone chan struct{}
	// keys is the gossip keyring the leader sent.
	keys *keyBox
	// established counts the sessions established (for the reconnects
	// metric).
	established atomic.Int64
	// pacedPeriod is the heartbeat period a leader asked for last (0: none
	// yet). A new session starts at it: a cluster that was paced to a
	// slower period stays paced while its agents move to a new leader.
	pacedPeriod atomic.Int64
}

// New checks cfg, loads (or makes) the node's identity and binds the Agent
// service, so that Addr is known before Run. Run must be called: it starts
// the agent and releases the listener when it returns.
func New(cfg Config) (*Agent, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	// The node ID is the certificate's (the managers chose it); without
	// credentials (tests on plaintext links) it is the configured one or
	// the data dir's.
	nodeID := cfg.NodeID
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	switch {
	case cfg.Credentials != nil:
		id := cfg.Credentials.Identity().NodeID
		if nodeID != "" && nodeID != id {
			return nil, fmt.Errorf("node ID %s differs from the certificate's %s", nodeID, id)
		}
		nodeID = id
	case nodeID == "":
		if nodeID, err = NodeID(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	store, err := openTaskStore(cfg.DataDir, nodeID)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", cfg.AdvertiseAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on advertise address %s: %w", cfg.AdvertiseAddr, err)
	}
	log := cfg.Logger.With("component", "agent", "node_id", nodeID)
	a := &Agent{
		cfg: cfg, log: log, nodeID: nodeID, lis: lis, addr: advertised(cfg.AdvertiseAddr, lis.Addr()),
		store: store, w: newWorker(cfg.Runtime, cfg.DataPlane, store, log), rejoin: make(chan struct{}, 1),
		sessionsDone: make(chan struct{}), keys: newKeyBox(),
	}
	a.w.metrics = cfg.Metrics
	cfg.Metrics.follow(a)
	a.grpc = grpc.NewServer(authz.ServerOptions(a.serverTLS(), a.guard())...)
	shoalpb.RegisterAgentServer(a.grpc, &logServer{a: a})
	return a, nil
}

func withDefaults(cfg Config) (Config, error) {
	switch {
	case cfg.DataDir == "":
		return cfg, fmt.Errorf("%w: data dir is empty", ErrInvalidConfig)
	case len(cfg.Join) == 0:
		return cfg, fmt.Errorf("%w: join list is empty: give at least one manager address", ErrInvalidConfig)
	case cfg.Runtime == nil:
		return cfg, fmt.Errorf("%w: no runtime", ErrInvalidConfig)
	case cfg.AdvertiseAddr == "":
		return cfg, fmt.Errorf("%w: advertise address is empty", ErrInvalidConfig)
	case cfg.Resources.NanoCPUs < 0 || cfg.Resources.MemoryBytes < 0:
		return cfg, fmt.Errorf("%w: resources %+v are negative", ErrInvalidConfig, cfg.Resources)
	case cfg.Credentials == nil && !cfg.Plaintext:
		return cfg, fmt.Errorf("%w: no credentials: an agent needs its certificate (join with a token)", ErrInvalidConfig)
	}
	for _, j := range cfg.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return cfg, fmt.Errorf("%w: join address %q: want host:port: %w", ErrInvalidConfig, j, err)
		}
	}
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return cfg, fmt.Errorf("%w: hostname not given and not detected: %w", ErrInvalidConfig, err)
		}
		cfg.Hostname = h
	}
	if cfg.Resources.NanoCPUs == 0 || cfg.Resources.MemoryBytes == 0 {
		host, err := detectResources()
		if err != nil {
			return cfg, err
		}
		cfg.Resources.NanoCPUs = cmp.Or(cfg.Resources.NanoCPUs, host.NanoCPUs)
		cfg.Resources.MemoryBytes = cmp.Or(cfg.Resources.MemoryBytes, host.MemoryBytes)
	}
	cfg.HeartbeatInterval = cmp.Or(cfg.HeartbeatInterval, DefaultHeartbeatInterval)
	if cfg.HeartbeatInterval < 0 || cfg.HeartbeatInterval > MaxHeartbeatInterval {
		return cfg, fmt.Errorf("%w: heartbeat interval %s: want more than 0s and at most %s", ErrInvalidConfig, cfg.HeartbeatInterval, MaxHeartbeatInterval)
	}
	if cfg.RestartHold != 0 {
		if err := api.CheckRestartHold(cfg.RestartHold); err != nil {
			return cfg, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	cfg.StatusDelay = cmp.Or(cfg.StatusDelay, DefaultStatusDelay)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Join = append([]string(nil), cfg.Join...)
	return cfg, nil
}

// advertised is the address to advertise: the configured one, with the
// bound port when it asked for port 0.
func advertised(configured string, bound net.Addr) string {
	host, port, err := net.SplitHostPort(configured)
	if err != nil || port != "0" {
		return configured
	}
	_, bport, err := net.SplitHostPort(bound.String())
	if err != nil {
		return configured
	}
	return net.JoinHostPort(host, bport)
}

// NodeID is this node's stable ID.
func (a *Agent) NodeID() string { return a.nodeID }

// Addr is the advertised address of the Agent service.
func (a *Agent) Addr() string { return a.addr }

// Run runs the agent until ctx ends. Containers keep running when it
// returns: the next start adopts them.
func (a *Agent) Run(ctx context.Context) error {
	defer a.lis.Close()
	containers, err := a.cfg.Runtime.List(ctx)
	if err != nil {
		return fmt.Errorf("list the runtime's containers: %w", err)
	}
	a.w.start(ctx, containers)
	a.log.Info("agent starting", "addr", a.addr, "hostname", a.cfg.Hostname,
		"tasks", len(a.store.list()), "containers", len(containers))

	// One connection per manager, kept: the session's, and the
	// certificate checks' (which would otherwise each shake hands).
	conns := newConnCache(a.clientTLS())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.store.run(gctx, a.log) })
	g.Go(func() error { return a.serve(gctx) })
	g.Go(func() error {
		defer conns.close()
		return a.runSessions(gctx, conns)
	})
	if a.cfg.GossipAddr != "" {
		g.Go(func() error { return a.runGossip(gctx) })
	}
	switch {
	case a.cfg.Credentials != nil && a.cfg.SharedCredentialsDir != "":
		g.Go(func() error { return a.reloadCredentials(gctx) })
	case a.cfg.Credentials != nil:
		g.Go(func() error { return a.renewCertificate(gctx, conns) })
	}
	if dp := a.cfg.DataPlane; dp != nil {
		g.Go(func() error { return dp.Run(gctx) })
	}
	err = g.Wait()
	a.w.wait()
	err = errors.Join(err, a.stopDataPlane())
	if ferr := a.store.flush(); ferr != nil && err == nil {
		err = ferr
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// stopDataPlane removes the data plane of an agent that leaves for good;
// a restarting agent leaves it to be adopted with the containers.
func (a *Agent) stopDataPlane() error {
	dp := a.cfg.DataPlane
	if dp == nil {
		return nil
	}
	defer dp.Close()
	if !a.cfg.LeaveOnStop {
		return nil
	}
	if err := dp.Remove(); err != nil {
		return fmt.Errorf("remove the data plane: %w", err)
	}
	return nil
}

// serve runs the Agent gRPC service until ctx ends.
func (a *Agent) serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- a.grpc.Serve(a.lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("agent service: %w", err)
	case <-ctx.Done():
		a.grpc.Stop()
		<-errc
		return nil
	}
}

// node describes this node for the leader.
func (a *Agent) node() *api.Node {
	return &api.Node{
		ID: a.nodeID, Hostname: a.cfg.Hostname, Addr: a.addr, Role: api.RoleWorker,
		Labels: a.cfg.Labels, Resources: a.cfg.Resources,
	}
}

// leaderHint returns the leader's address as last heard ("" if none).
func (a *Agent) leaderHint() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.leader
}

// setLeader records the leader's address as last heard.
func (a *Agent) setLeader(addr string) {
	a.mu.Lock()
	a.leader = addr
	a.mu.Unlock()
}

// addManagers records managers' gRPC addresses.
func (a *Agent) addManagers(addrs ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range addrs {
		if m != "" && !contains(a.managers, m) {
			a.managers = append(a.managers, m)
		}
	}
}

// otherManagers is every manager address the agent knows but addr.
func (a *Agent) otherManagers(addr string) []string {
	return slices.DeleteFunc(a.candidates(), func(m string) bool { return m == addr })
}

// candidates lists where to look for the leader: the last known leader,
// managers seen in gossip or in cluster status, then the join list.
func (a *Agent) candidates() []string {
	a.mu.Lock()
	out := []string{}
	if a.leader != "" {
		out = append(out, a.leader)
	}
	out = append(out, a.managers...)
	g := a.gossip
	a.mu.Unlock()
	if g != nil {
		out = append(out, gossipManagers(g)...)
	}
	out = append(out, a.cfg.Join...)
	seen := make(map[string]bool, len(out))
	uniq := out[:0]
	for _, m := range out {
		if m != "" && !seen[m] {
			seen[m] = true
			uniq = append(uniq, m)
		}
	}
	return uniq
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
