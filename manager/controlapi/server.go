// Package controlapi serves the Control gRPC API that shoalctl talks to.
// Every manager serves it. Writes and fresh reads are answered by the Raft
// leader: a follower forwards the same RPC to the leader's gRPC address and
// relays the answer, so a client may talk to any manager. Reads with stale
// set are answered from the local state.
//
// This package is the one place where raftstore's sentinel errors become
// gRPC status codes.
package controlapi

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoal-sched/shoal/manager/ca"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// Raft is what the control API needs of the local Raft member
// (*raftstore.Node satisfies it).
type Raft interface {
	raftstore.Applier
	State() *raftstore.State
	Leader() (id, raftAddr string)
	VerifyLeader(ctx context.Context) error
	AddVoter(ctx context.Context, id, raftAddr string) error
	AddNonvoter(ctx context.Context, id, raftAddr string) error
	DemoteVoter(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context, id string) error
	Members() ([]raftstore.Member, error)
	Stats() raftstore.Stats
}

// Config configures a Server.
type Config struct {
	// ID is this manager's Raft member id.
	ID   string
	Raft Raft
	// Applier commits this server's writes; nil means Raft. Tests put a
	// fake here to make commits fail in ways a live cluster rarely does.
	Applier raftstore.Applier
	// LeaderTimeout bounds how long a write or fresh read waits for a
	// leader (forwarding and retries included) before it fails with the
	// no-quorum error. Default 7 s, so that the error arrives within 10 s.
	LeaderTimeout time.Duration
	// ProbeTimeout bounds one reachability probe of another manager.
	// Default 500 ms.
	ProbeTimeout time.Duration
	Logger       *slog.Logger
	// ManagerTLS and AgentTLS are the TLS configurations of the calls to
	// other managers (forwarding, probes) and to agents (task logs); nil
	// is plaintext, which only tests use.
	ManagerTLS, AgentTLS *tls.Config
	// Images resolves image tags to digests on service writes (see
	// pinImage); nil keeps tags as given. ResolveTimeout bounds one
	// resolution (default 5 s).
	Images         ImageResolver
	ResolveTimeout time.Duration
	// CAProgress reports a root rotation's progress as this manager has
	// seen it (the leader's answers GetRootCAStatus); nil reports none.
	CAProgress func(*raftstore.View) ca.Progress
}

const (
	defaultLeaderTimeout = 7 * time.Second
	defaultProbeTimeout  = 500 * time.Millisecond
)

// Server implements shoalpb.ControlServer.
type Server struct {
	shoalpb.UnimplementedControlServer

	id      string
	raft    Raft
	applier raftstore.Applier
	peers   *peers
	// agentTLS is the TLS configuration of calls to agents.
	agentTLS *tls.Config
	health   *health.Server
	log      *slog.Logger

	leaderTimeout time.Duration
	probeTimeout  time.Duration

	images         ImageResolver
	resolveTimeout time.Duration
	caProgress     func(*raftstore.View) ca.Progress
	// changes holds the changes Watch sends, encoded once for every watcher.
	changes *changeCache
}

// New returns a Server. Close it to release its connections to the other
// managers.
func New(cfg Config) *Server {
	s := &Server{
		id:            cfg.ID,
		raft:          cfg.Raft,
		applier:       cfg.Applier,
		peers:         newPeers(cfg.ManagerTLS),
		agentTLS:      cfg.AgentTLS,
		health:        health.NewServer(),
		log:           cfg.Logger,
		leaderTimeout: cfg.LeaderTimeout,
		probeTimeout:  cfg.ProbeTimeout,
		caProgress:    cfg.CAProgress,
		images:        cfg.Images, resolveTimeout: cfg.ResolveTimeout,
		changes: newChangeCache(),
	}
	if s.resolveTimeout <= 0 {
		s.resolveTimeout = defaultResolveTimeout
	}
	if s.applier == nil {
		s.applier = cfg.Raft
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "controlapi")
	if s.leaderTimeout <= 0 {
		s.leaderTimeout = defaultLeaderTimeout
	}
	if s.probeTimeout <= 0 {
		s.probeTimeout = defaultProbeTimeout
	}
	return s
}

// Register adds the Control service, and the standard health service that
// managers use to probe each other, to a gRPC server.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	shoalpb.RegisterControlServer(g, s)
	healthpb.RegisterHealthServer(g, s.health)
}

// Close releases the connections to other managers and marks this server
// as not serving for health probes.
func (s *Server) Close() error {
	s.health.Shutdown()
	return s.peers.close()
}

// state returns the local state (it may lag the leader on a follower).
func (s *Server) state() *raftstore.State { return s.raft.State() }

// newID returns a random object id: 25 lower-case hex characters, enough
// that collisions never happen in practice and prefixes stay short.
func newID() string {
	var b [13]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on Linux; if it ever does, an id we
		// cannot trust is worse than stopping.
		panic("controlapi: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b[:])[:25]
}

// now is the clock commands are stamped with. Timestamps go inside
// commands so the FSM never reads a clock.
func now() time.Time { return time.Now().UTC() }
