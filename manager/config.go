package manager

import (
	"github.com/shoal-sched/shoal/internal/registry"

	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/shoal-sched/shoal/membership"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("invalid manager configuration")

// Config configures one manager process.
type Config struct {
	// DataDir holds the Raft log, snapshots, the manager's id and (by
	// default) the control socket. Required.
	DataDir string
	// Addr is the gRPC address (control API and dispatcher) that clients,
	// agents and the other managers reach; "127.0.0.1:0" picks a port.
	Addr string
	// RaftAddr is the Raft TCP address (bind and advertise); port 0 picks
	// a free port at start.
	RaftAddr string
	// AdvertiseAddr and RaftAdvertiseAddr are the addresses the other
	// managers and the agents dial to reach Addr and RaftAddr, when these
	// differ from the bound ones (a proxy or a NAT in front of this
	// manager); empty: the bound addresses.
	AdvertiseAddr     string
	RaftAdvertiseAddr string
	// Join is the gRPC address of a manager of an existing cluster. It is
	// used on the first start only: a manager with Raft state rejoins as
	// the member it was.
	Join string
	// Token is the manager join token (shoalctl cluster join-token
	// manager): a first start with Join trades it for this manager's
	// certificate. Later starts use the certificate in DataDir.
	Token string
	// Standby joins as a Raft non-voter: the manager follows the log, its
	// host's node is a worker, and `node promote` makes it a voter. Only
	// with Join, and only on the first start (a member keeps its place).
	Standby bool
	// Socket is the unix socket of the control API (default
	// DataDir/control.sock); "-" disables it.
	Socket string
	// ForceNewCluster restarts a lone survivor as a one-member cluster
	// that keeps all its state.
	ForceNewCluster bool
	// GossipAddr is the memberlist bind address; empty disables gossip.
	GossipAddr string
	// GossipKey is the first gossip key of a new cluster (base64 of 16, 24
	// or 32 bytes); empty: a random one. The keys then live in Raft.
	GossipKey string
	Gossip    GossipTiming
	// Autolock turns autolock on when the cluster never had it set: the
	// managers' data keys are wrapped with an unlock key, and a restarted
	// manager waits for shoalctl cluster unlock.
	Autolock bool
	// NodeGracePeriod is how long a node may be without an agent session
	// before the leader declares it down (zero: the dispatcher's default).
	NodeGracePeriod time.Duration
	// NodeReconnectWindow is how long a new leader waits for the agents of
	// ready nodes to open a session with it before it may declare them
	// down (zero: the dispatcher's default). Gossip-confirmed deaths do not
	// wait for it.
	NodeReconnectWindow time.Duration
	Raft                RaftTiming
	// LeaderTimeout bounds how long a write waits for a leader before it
	// fails with the no-quorum error (default 7 s).
	LeaderTimeout time.Duration
	// CertStatusInterval is how often this manager asks the CA whether to
	// renew its certificate early (a root rotation); zero: a minute.
	CertStatusInterval time.Duration
	// JoinTimeout bounds the first join (default 60 s).
	JoinTimeout time.Duration
	// DebugAddr, when set, serves Go's runtime profiles (/debug/pprof/)
	// for diagnosis.
	DebugAddr string
	// MetricsAddr, when set, serves the manager's Prometheus metrics as
	// text on /metrics (host:port; port 0 picks one). Empty: not served.
	MetricsAddr string
	// UIAddr, when set, serves the web UI and its JSON gateway there
	// (read-only; plain HTTP unless UITLS).
	UIAddr string
	// UITLS serves the web UI over HTTPS with the manager's certificate;
	// a browser that shows a certificate of the cluster's CA is the caller
	// the authorisation table judges (without one: the read-only viewer).
	UITLS  bool
	Logger *slog.Logger
	// Plaintext runs every link without TLS and without authorisation
	// (a joining manager then makes its own certificate instead of
	// trading a token). It exists for benchmarks that measure what TLS
	// costs; no flag sets it. Otherwise every gRPC and Raft link is mutual
	// TLS with the manager's certificate.
	Plaintext bool
	// Images, when set, makes the leader resolve every service's image
	// tag to a digest on create and update (see controlapi.ImageResolver),
	// reaching registries as agents do; nil keeps tags as given.
	Images *registry.Options
}

// RaftTiming holds the Raft timeouts; zero values take raftstore's
// LAN-tuned defaults.
type RaftTiming struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	ApplyTimeout       time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	// MaxProposalBatch: how many concurrent writes one Raft entry may
	// carry (raftstore.Config); 1 gives each write an entry of its own.
	MaxProposalBatch int
}

// GossipTiming holds the memberlist failure-detection settings; zero
// values take the membership package's LAN-tuned defaults.
type GossipTiming struct {
	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	SuspicionMult  int
	GossipInterval time.Duration
}

const (
	defaultJoinTimeout = 60 * time.Second
	socketName         = "control.sock"
	// maxSocketPath is the longest unix socket path Linux accepts.
	maxSocketPath = 107
)

// withDefaults checks cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.DataDir == "" {
		return cfg, fmt.Errorf("%w: data dir: empty; give a directory for the Raft log", ErrConfig)
	}
	for _, a := range []struct {
		name, val string
		optional  bool
	}{
		{"addr", cfg.Addr, false}, {"raft addr", cfg.RaftAddr, false},
		{"advertise addr", cfg.AdvertiseAddr, true}, {"raft advertise addr", cfg.RaftAdvertiseAddr, true},
	} {
		if a.optional && a.val == "" {
			continue
		}
		if err := checkAddr(a.name, a.val); err != nil {
			return cfg, err
		}
	}
	if cfg.Join != "" {
		if _, _, err := net.SplitHostPort(cfg.Join); err != nil {
			return cfg, fmt.Errorf("%w: join %q: want host:port of a manager's gRPC address", ErrConfig, cfg.Join)
		}
	}
	if cfg.Standby && cfg.Join == "" {
		return cfg, fmt.Errorf("%w: standby without join: a standby joins an existing cluster; give --join", ErrConfig)
	}
	if cfg.ForceNewCluster && cfg.Join != "" {
		return cfg, fmt.Errorf("%w: force new cluster with join %q: a forced cluster starts alone; drop one of them", ErrConfig, cfg.Join)
	}
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(cfg.DataDir, socketName)
	}
	if cfg.Socket != "-" && len(cfg.Socket) > maxSocketPath {
		return cfg, fmt.Errorf("%w: socket %q: longer than %d bytes; give a shorter path", ErrConfig, cfg.Socket, maxSocketPath)
	}
	for _, d := range []struct {
		name string
		val  time.Duration
	}{{"node grace period", cfg.NodeGracePeriod}, {"node reconnect window", cfg.NodeReconnectWindow}} {
		if d.val < 0 {
			return cfg, fmt.Errorf("%w: %s %s: negative; give 0 for the default or a positive duration", ErrConfig, d.name, d.val)
		}
	}
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = defaultJoinTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}

// checkAddr refuses an address other managers could not dial: the address
// is advertised as given.
func checkAddr(name, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: %s %q: want host:port", ErrConfig, name, addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return fmt.Errorf("%w: %s %q: a wildcard address cannot be advertised; give the address other managers reach, e.g. 10.0.0.5:4242",
			ErrConfig, name, addr)
	}
	return nil
}

// parseGossipKey decodes the gossip key ("" means no encryption).
func parseGossipKey(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	key, err := membership.ParseGossipKey(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return key, nil
}
