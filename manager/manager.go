// Package manager wires one manager process: the Raft member and its
// state, the control API (on TCP and a unix socket), the dispatcher that
// agents connect to, gossip membership, and the leader-only duties
// (orchestrators, dispatcher bookkeeping) that run while this manager
// leads.
package manager

import (
	"github.com/shoal-sched/shoal/internal/registry"

	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/internal/debughttp"
	"github.com/shoal-sched/shoal/internal/metricshttp"
	"github.com/shoal-sched/shoal/manager/ca"
	"github.com/shoal-sched/shoal/manager/controlapi"
	"github.com/shoal-sched/shoal/manager/dispatcher"
	"github.com/shoal-sched/shoal/manager/raftstream"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/raftstore"
)

// gracefulStopTimeout bounds waiting for open gRPC calls (event streams,
// agent sessions) at shutdown before they are cut.
const gracefulStopTimeout = 2 * time.Second

// Manager is one manager process.
type Manager struct {
	cfg      Config
	id       string
	raftAddr string
	raftLn   net.Listener // handed to Raft by Run
	// stream is Raft's TLS layer over raftLn (nil in plaintext).
	stream *raftstream.Stream
	// advertise and raftAdvertise are the addresses others dial (the
	// bound ones unless the config names others).
	advertise, raftAdvertise string
	// gossip is the gossip address ("" when gossip is off).
	gossip    string
	gossipKey []byte
	// images resolves image tags (nil: Config.Images is not set).
	images controlapi.ImageResolver
	log    *slog.Logger
	tcp    net.Listener
	unix   net.Listener // nil when the socket is disabled
	ui     net.Listener // the web UI's (nil when it is off)

	crashOnce sync.Once
	crashed   chan struct{}

	// creds are this manager's key, certificate and trusted roots; its id
	// is the certificate's node ID.
	creds *pki.Credentials

	mu   sync.Mutex
	node *raftstore.Node // set while Run runs
	// gossipRun is the gossip member while Run runs (nil: gossip off).
	gossipRun *gossipRun
	// rest is the data key, once Run has it (after an unlock, if locked).
	rest *atRest
	gs   *grpc.Server // set while Run runs
	disp *dispatcher.Dispatcher

	// metrics is the manager's registry and its parts' figures.
	metrics *metrics
}

// New is Open for callers without a context: a first join is then
// bounded by JoinTimeout alone.
func New(cfg Config) (*Manager, error) {
	return Open(context.Background(), cfg)
}

// Open checks cfg, loads the manager's credentials (or makes them: a new
// cluster's CA without --join, a certificate traded for --token with it)
// and opens its listeners, so ID and Addr are known before Run. Run must
// be called to release them.
func Open(ctx context.Context, cfg Config) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	creds, err := credentialsFor(ctx, cfg)
	if err != nil {
		return nil, err
	}
	id := creds.Identity().NodeID
	var images controlapi.ImageResolver
	if cfg.Images != nil {
		regs, err := registry.New(*cfg.Images)
		if err != nil {
			return nil, fmt.Errorf("registries: %w", err)
		}
		images = regs
	}
	// The Raft listener is bound here and handed to Raft, not picked and
	// bound again later: another process could take a port in between.
	raftLn, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("raft addr %q: %w", cfg.RaftAddr, err)
	}
	raftAddr := boundAddr(cfg.RaftAddr, raftLn.Addr())
	var gossipAddr string
	if cfg.GossipAddr != "" {
		if gossipAddr, err = pickPort("gossip addr", cfg.GossipAddr); err != nil {
			return nil, err
		}
	}
	key, err := parseGossipKey(cfg.GossipKey)
	if err != nil {
		raftLn.Close()
		return nil, err
	}
	tcp, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		raftLn.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	unix, err := listenUnix(cfg.Socket)
	if err != nil {
		tcp.Close()
		raftLn.Close()
		return nil, err
	}
	ui, err := listenUI(cfg.UIAddr)
	if err != nil {
		tcp.Close()
		raftLn.Close()
		if unix != nil {
			unix.Close()
		}
		return nil, err
	}
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = metricshttp.Listen(cfg.MetricsAddr); err != nil {
			tcp.Close()
			raftLn.Close()
			if unix != nil {
				unix.Close()
			}
			if ui != nil {
				ui.Close()
			}
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	m := &Manager{
		cfg: cfg, id: id, creds: creds, raftAddr: raftAddr, raftLn: raftLn, gossip: gossipAddr, gossipKey: key, tcp: tcp, unix: unix, ui: ui,
		advertise:     cmp.Or(cfg.AdvertiseAddr, tcp.Addr().String()),
		raftAdvertise: cmp.Or(cfg.RaftAdvertiseAddr, raftAddr),
		log:           cfg.Logger.With("component", "manager", "manager_id", id),
		crashed:       make(chan struct{}),
		images:        images,
	}
	m.metrics = newMetrics(m)
	m.metrics.ln = metricsLn
	return m, nil
}

// ID is the manager's Raft member id.
func (m *Manager) ID() string { return m.id }

// Credentials are the manager's key, certificate and trusted roots.
func (m *Manager) Credentials() *pki.Credentials { return m.creds }

// Addr is the gRPC address of the control API and the dispatcher.
func (m *Manager) Addr() string { return m.tcp.Addr().String() }

// RaftAddr is the Raft TCP address.
func (m *Manager) RaftAddr() string { return m.raftAddr }

// AdvertiseAddr is the gRPC address others dial: Addr unless the config
// names another.
func (m *Manager) AdvertiseAddr() string { return m.advertise }

// RaftAdvertiseAddr is the Raft address others dial: RaftAddr unless the
// config names another.
func (m *Manager) RaftAdvertiseAddr() string { return m.raftAdvertise }

// GossipAddr is the gossip address ("" when gossip is off).
func (m *Manager) GossipAddr() string { return m.gossip }

// Socket is the control API's unix socket path ("" when disabled).
func (m *Manager) Socket() string {
	if m.unix == nil {
		return ""
	}
	return m.cfg.Socket
}

// Raft returns the Raft member while Run runs, nil otherwise.
func (m *Manager) Raft() *raftstore.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.node
}

// Crash stops the manager the way a crash would: listeners and Raft close
// at once, gossip does not announce a leave, open calls are cut. Run then
// returns. It exists for failure tests; a real stop cancels Run's context.
func (m *Manager) Crash() { m.crashOnce.Do(func() { close(m.crashed) }) }

// Run runs the manager until ctx ends (a clean stop) or Crash is called.
func (m *Manager) Run(ctx context.Context) error {
	defer m.closeListeners()
	if err := m.serveDebug(ctx); err != nil {
		return err
	}
	m.serveMetrics(ctx)
	// A locked manager waits here, serving only the unlock, until it has
	// its data key: Raft cannot read its log without it.
	rest, err := m.openDataKey(ctx)
	if errors.Is(err, errStoppedLocked) {
		return nil
	}
	if err != nil {
		return err
	}
	m.rest = rest
	node, err := m.openRaft()
	if err != nil {
		return err
	}
	m.setNode(node)
	defer m.setNode(nil)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-m.crashed:
			cancel()
		case <-runCtx.Done():
		}
	}()
	var wg sync.WaitGroup
	caSrv := ca.NewServer(ca.Config{State: node.State(), Self: m.creds, Logger: m.cfg.Logger})
	serverTLS, managerTLS, agentTLS := m.tlsFor()
	ctl := controlapi.New(controlapi.Config{
		ID: m.id, Raft: node, LeaderTimeout: m.cfg.LeaderTimeout, Logger: m.cfg.Logger,
		ManagerTLS: managerTLS, AgentTLS: agentTLS, CAProgress: caSrv.Progress,
		Images: m.images,
	})
	// Calls are timed around the guard, so that refusals show in the
	// request metrics with their codes.
	gs := grpc.NewServer(authz.MeteredServerOptions(serverTLS, m.newGuard(node.State()), m.metrics.reqs)...)
	m.setServer(gs)
	ctl.Register(gs)
	caSrv.Register(gs)
	wg.Go(func() { m.renew(runCtx, node) })
	wg.Go(func() { m.keepTicketKeys(runCtx, node.State()) })
	parts, err := m.startParts(runCtx, gs, node)
	if err != nil {
		cancel()
		wg.Wait()
		return errors.Join(err, node.Close(), ctl.Close())
	}
	parts.duties = append(parts.duties, duty{name: "ca rotation", run: func(ctx context.Context) error {
		return caSrv.RunRotation(ctx, node)
	}})
	serveErr := m.serve(gs)
	if m.ui != nil {
		wg.Go(func() {
			if err := m.serveUI(runCtx, gs, managerTLS); err != nil {
				m.log.Error("web UI stopped", "error", err)
			}
		})
	}
	wg.Go(func() { m.lead(runCtx, node, parts.duties) })
	wg.Go(func() { rest.follow(runCtx, node) })
	err = m.joinIfNew(runCtx, node)
	if err == nil {
		wg.Go(func() { m.keepRecorded(runCtx, node) })
		err = m.wait(ctx, serveErr)
	}
	cancel()
	crashed := m.isCrashed()
	if crashed {
		gs.Stop()
	} else {
		stopGRPC(gs)
	}
	wg.Wait()
	return errors.Join(err, parts.stop(crashed), node.Close(), ctl.Close())
}

// openRaft opens (or reopens from the data dir) this manager's Raft member.
// A manager without --join bootstraps a new cluster if it has no state.
func (m *Manager) openRaft() (*raftstore.Node, error) {
	r := m.cfg.Raft
	m.stream = m.raftStream()
	node, err := raftstore.Open(raftstore.Config{
		ID: m.id, DataDir: m.cfg.DataDir, RaftAddr: m.raftAddr, RaftListener: m.raftLn, Stream: streamLayer(m.stream),
		Bootstrap: m.cfg.Join == "", ForceNewCluster: m.cfg.ForceNewCluster,
		HeartbeatTimeout: r.HeartbeatTimeout, ElectionTimeout: r.ElectionTimeout,
		LeaderLeaseTimeout: r.LeaderLeaseTimeout, CommitTimeout: r.CommitTimeout,
		ApplyTimeout: r.ApplyTimeout, SnapshotThreshold: r.SnapshotThreshold,
		SnapshotInterval: r.SnapshotInterval, MaxProposalBatch: r.MaxProposalBatch,
		Logger: m.cfg.Logger, DataKey: m.rest.key, Metrics: m.metrics.raft,
	})
	if err != nil {
		return nil, fmt.Errorf("open raft in %s: %w", m.cfg.DataDir, err)
	}
	m.log.Info("raft member open", "raft_addr", m.raftAddr, "addr", m.Addr(), "socket", m.Socket(),
		"advertise_addr", m.advertise, "raft_advertise_addr", m.raftAdvertise)
	return node, nil
}

// serve serves gRPC on the TCP listener and the unix socket. The returned
// channel gets the first serving error.
func (m *Manager) serve(gs *grpc.Server) <-chan error {
	errs := make(chan error, 2)
	for _, l := range []net.Listener{m.tcp, m.unix} {
		if l == nil {
			continue
		}
		go func() {
			if err := gs.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				errs <- fmt.Errorf("serve gRPC on %s: %w", l.Addr(), err)
			}
		}()
	}
	return errs
}

// wait blocks until a clean stop, a crash or a serving error.
func (m *Manager) wait(ctx context.Context, serveErr <-chan error) error {
	select {
	case <-ctx.Done():
		m.log.Info("stopping")
		return nil
	case <-m.crashed:
		m.log.Warn("crashing on request")
		return nil
	case err := <-serveErr:
		return err
	}
}

func (m *Manager) isCrashed() bool {
	select {
	case <-m.crashed:
		return true
	default:
		return false
	}
}

// stopGRPC lets open calls finish for a moment, then cuts them: agent
// sessions and event streams never end on their own.
func stopGRPC(gs *grpc.Server) {
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(gracefulStopTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		gs.Stop()
		<-done
	}
}

func (m *Manager) setNode(n *raftstore.Node) {
	m.mu.Lock()
	m.node = n
	m.mu.Unlock()
}

func (m *Manager) closeListeners() {
	// grpc.Server.Stop closes them too; the second close only reports
	// that, and closing a unix listener removes its socket file.
	m.tcp.Close()
	m.raftLn.Close()
	if m.unix != nil {
		m.unix.Close()
	}
	if m.ui != nil {
		m.ui.Close()
	}
	if m.metrics.ln != nil {
		m.metrics.ln.Close()
	}
}

// boundAddr is the address to record for a listener asked for at
// configured: the configured host with the bound port (port 0 picks one).
func boundAddr(configured string, bound net.Addr) string {
	host, _, err := net.SplitHostPort(configured)
	_, port, berr := net.SplitHostPort(bound.String())
	if err != nil || berr != nil {
		return bound.String()
	}
	return net.JoinHostPort(host, port)
}

// serveDebug starts the profile server when the config asks for one.
func (m *Manager) serveDebug(ctx context.Context) error {
	if m.cfg.DebugAddr == "" {
		return nil
	}
	l, err := debughttp.Listen(m.cfg.DebugAddr)
	if err != nil {
		return err
	}
	go func() {
		if err := debughttp.Serve(ctx, l); err != nil {
			m.log.Error("debug server stopped", "error", err)
		}
	}()
	return nil
}
