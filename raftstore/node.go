package raftstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// LAN-tuned defaults. A follower starts an election after 1–2 heartbeat
// timeouts without hearing from the leader, so a dead leader is replaced
// in about 0.5–1 s; the leader sends heartbeats every tenth of the timeout
// (50 ms), which leaves room for scheduling delays on a busy host before
// anyone suspects it.
//
// The leader lease is as long as the heartbeat timeout: a leader steps
// down when it has heard from no quorum for that long. The lease does not
// delay a failover (the other side elects on its own timeout), but a false
// step-down is costly: every agent session ends and a thousand agents
// reconnect at once, which on a loaded host caused the next step-down. At
// 250 ms, two shared cores under load stepped down a healthy leader
// several times a minute.
const (
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 500 * time.Millisecond
	DefaultLeaderLeaseTimeout = 500 * time.Millisecond
	DefaultCommitTimeout      = 20 * time.Millisecond
	DefaultApplyTimeout       = 5 * time.Second
)

// Config configures a Raft member.
type Config struct {
	ID       string // stable member id (kept in DataDir after the first start)
	DataDir  string // Raft log and stable store (raft.db), snapshots
	RaftAddr string // bind and advertise address for Raft TCP
	// RaftListener, if set, is the listener bound at RaftAddr; Raft takes
	// it over (and closes it) instead of binding RaftAddr itself.
	RaftListener net.Listener
	// Stream, if set, is the stream layer Raft speaks over (the manager's
	// TLS layer, built on RaftListener); RaftListener is then not used.
	Stream raft.StreamLayer
	// Bootstrap makes a new single-member cluster if DataDir holds none.
	Bootstrap bool
	// ForceNewCluster restarts this member alone with all its state.
	// Set it for one start only: each start with it drops the other
	// members from the configuration again.
	ForceNewCluster bool
	// Timeouts; zero values take LAN-tuned defaults.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// ApplyTimeout bounds Apply when there is no leader (default 5 s).
	ApplyTimeout time.Duration
	// SnapshotThreshold and SnapshotInterval: how many new entries, checked
	// how often, make a snapshot (and compact the log); zero: raft's
	// defaults (8192 entries, 2 min).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// Logger receives raft's logs (routine events at debug level); nil
	// discards them.
	Logger *slog.Logger
	// MaxProposalBatch is how many concurrent Apply calls one log entry
	// may carry (proposals.go); zero: DefaultMaxProposalBatch. One sends
	// every command in an entry of its own.
	MaxProposalBatch int
	// DataKey, when set (seal.KeySize bytes), encrypts the log entries and
	// snapshots written from now on (AES-256-GCM); what was written
	// without it is still read.
	DataKey []byte
	// Metrics receives the member's figures (nil: none are kept).
	Metrics *Metrics
}

func (c *Config) setDefaults() {
	c.HeartbeatTimeout = cmp.Or(c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	c.ElectionTimeout = cmp.Or(c.ElectionTimeout, max(DefaultElectionTimeout, c.HeartbeatTimeout))
	c.LeaderLeaseTimeout = cmp.Or(c.LeaderLeaseTimeout, min(DefaultLeaderLeaseTimeout, c.HeartbeatTimeout))
	c.CommitTimeout = cmp.Or(c.CommitTimeout, DefaultCommitTimeout)
	c.ApplyTimeout = cmp.Or(c.ApplyTimeout, DefaultApplyTimeout)
	c.MaxProposalBatch = cmp.Or(c.MaxProposalBatch, DefaultMaxProposalBatch)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Node is one Raft member with its FSM over a State.
type Node struct {
	cfg    Config
	id     string
	log    *slog.Logger
	state  *State
	raft   *raft.Raft
	trans  *raft.NetworkTransport
	logs   *raftboltdb.BoltStore
	leader *leaderFanout
	// proposer batches concurrent Applies; nil: one entry per Apply.
	proposer *proposer

	// logStore is logs as Raft's log store (sealed when there is a data key).
	logStore raft.LogStore
	metrics  *Metrics
	// stopWatch ends the leader-change counter; watchDone is closed once it
	// has.
	stopWatch chan struct{}
	watchDone <-chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Open starts (or restarts from DataDir) a Raft member.
func Open(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("raft data dir: empty: %w", ErrInvalid)
	}
	if cfg.MaxProposalBatch < 0 {
		return nil, fmt.Errorf("max proposal batch %d: below 0 (0 takes the default of %d, 1 turns batching off): %w",
			cfg.MaxProposalBatch, DefaultMaxProposalBatch, ErrInvalid)
	}
	id, err := memberID(cfg.DataDir, cfg.ID)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, id: id, log: cfg.Logger.With("component", "raft"), state: NewState(), metrics: cfg.Metrics}
	if err := n.open(); err != nil {
		n.closeStores()
		return nil, err
	}
	n.stopWatch = make(chan struct{})
	n.watchDone = n.watchLeaders(n.stopWatch)
	n.metrics.setNode(n)
	return n, nil
}

func (n *Node) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.id)
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	if n.cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	}
	if n.cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = n.cfg.SnapshotInterval
	}
	rc.Logger = newHCLog(n.log, "raft")
	return rc
}

func (n *Node) open() error {
	var err error
	n.logs, err = openLogStore(n.cfg.DataDir, newHCLog(n.log, "log"))
	if err != nil {
		return err
	}
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, 2, newHCLog(n.log, "snapshot"))
	if err != nil {
		return fmt.Errorf("raft snapshots in %s: %w", n.cfg.DataDir, err)
	}
	var snaps raft.SnapshotStore
	n.logStore, snaps, err = sealStores(n.cfg.DataKey, n.logs, fileSnaps)
	if err != nil {
		return err
	}
	n.trans, err = newTransport(n.cfg.RaftAddr, n.cfg.RaftListener, n.cfg.Stream, newHCLog(n.log, "transport"))
	if err != nil {
		return err
	}
	rc := n.raftConfig()
	self := raft.Configuration{Servers: []raft.Server{
		{Suffrage: raft.Voter, ID: rc.LocalID, Address: n.trans.LocalAddr()},
	}}
	has, err := raft.HasExistingState(n.logStore, n.logs, snaps)
	if err != nil {
		return fmt.Errorf("raft state in %s: %w", n.cfg.DataDir, err)
	}
	switch {
	case n.cfg.ForceNewCluster && !has:
		return fmt.Errorf("force new cluster: data dir %s holds no raft state to recover: %w", n.cfg.DataDir, ErrInvalid)
	case n.cfg.ForceNewCluster:
		// RecoverCluster replays the log into a scratch FSM to write a
		// snapshot; the real FSM restores from it below.
		scratch := &fsm{state: NewState()}
		if err := raft.RecoverCluster(rc, scratch, n.logStore, n.logs, snaps, n.trans, self); err != nil {
			return fmt.Errorf("force new cluster: %w", err)
		}
		n.log.Warn("raft cluster recovered with this member alone", "member_id", n.id)
	case !has && n.cfg.Bootstrap:
		if err := raft.BootstrapCluster(rc, n.logStore, n.logs, snaps, n.trans, self); err != nil {
			return fmt.Errorf("bootstrap raft cluster: %w", err)
		}
	}
	notify := make(chan bool, 1)
	rc.NotifyCh = notify
	n.raft, err = raft.NewRaft(rc, &fsm{state: n.state, metrics: n.metrics}, n.logCache(), n.logs, snaps, n.trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	n.leader = newLeaderFanout(notify)
	if n.cfg.MaxProposalBatch > 1 {
		n.proposer = newProposer(n.raft.Apply, n.cfg.ApplyTimeout, n.cfg.MaxProposalBatch)
	}
	return nil
}

// closeStores releases what open acquired when open fails half way.
func (n *Node) closeStores() {
	if n.trans != nil {
		n.trans.Close()
	}
	if n.logs != nil {
		n.logs.Close()
	}
}

// ID is this member's stable id.
func (n *Node) ID() string { return n.id }

// RaftAddr is the address this member advertises (the bound address when
// the configured port was 0).
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }

// State is the member's FSM state (on a follower it may lag the leader).
func (n *Node) State() *State { return n.state }

// IsLeader reports whether this member is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the current leader's id and Raft address ("" if none).
func (n *Node) Leader() (id, raftAddr string) {
	addr, lid := n.raft.LeaderWithID()
	return string(lid), string(addr)
}

// LeadershipChanges returns a channel that receives true when this member
// becomes leader and false when it stops being one. Each call gets its own
// channel; cancel releases it (and closes it). If this member is the leader
// when the call is made, the channel starts with true. A reader that falls
// behind loses the older edges, never the latest one.
func (n *Node) LeadershipChanges() (ch <-chan bool, cancel func()) {
	return n.leader.subscribe(n.IsLeader())
}

// Stats returns this member's Raft figures.
func (n *Node) Stats() Stats {
	term, _ := strconv.ParseUint(n.raft.Stats()["term"], 10, 64)
	return Stats{
		ID:           n.id,
		State:        stateName(n.raft.State()),
		Term:         term,
		LastIndex:    n.raft.LastIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
	}
}

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	default:
		return "shutdown"
	}
}

// Member is one server in the Raft configuration.
type Member struct {
	ID       string
	RaftAddr string
	Voter    bool
}

// Members returns the Raft configuration, sorted by id.
func (n *Node) Members() ([]Member, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raft configuration: %w", raftError(err))
	}
	var out []Member
	for _, s := range f.Configuration().Servers {
		out = append(out, Member{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// AddVoter adds (or re-adds) a member.
func (n *Node) AddVoter(ctx context.Context, id, raftAddr string) error {
	if id == "" || raftAddr == "" {
		return fmt.Errorf("add voter %q at %q: id and address are required: %w", id, raftAddr, ErrInvalid)
	}
	f := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, n.cfg.ApplyTimeout)
	if err := wait(ctx, f); err != nil {
		return fmt.Errorf("add voter %q at %s: %w", id, raftAddr, raftError(err))
	}
	return nil
}

// RemoveServer removes a member.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	f := n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout)
	if err := wait(ctx, f); err != nil {
		return fmt.Errorf("remove member %q: %w", id, raftError(err))
	}
	return nil
}

// TransferLeadership hands leadership to member id, which must be a voter
// in the configuration, and returns once this member has stepped down.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	members, err := n.Members()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(members, func(m Member) bool { return m.ID == id && m.Voter })
	if i < 0 {
		return fmt.Errorf("transfer leadership to %q: not a voter in the configuration: %w", id, ErrInvalid)
	}
	f := n.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(members[i].RaftAddr))
	if err := wait(ctx, f); err != nil {
		return fmt.Errorf("transfer leadership to %q: %w", id, raftError(err))
	}
	return nil
}

// VerifyLeader confirms leadership with a quorum and waits until the FSM has
// applied everything committed (a barrier), for fresh reads.
func (n *Node) VerifyLeader(ctx context.Context) error {
	if err := wait(ctx, n.raft.VerifyLeader()); err != nil {
		return fmt.Errorf("verify leader: %w", raftError(err))
	}
	if err := wait(ctx, n.raft.Barrier(n.cfg.ApplyTimeout)); err != nil {
		return fmt.Errorf("barrier: %w", raftError(err))
	}
	return nil
}

// Close shuts the member down (it keeps its data for a restart). It does
// not hand leadership over: to the others it is as if the member died.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.metrics.clearNode(n)
		close(n.stopWatch)
		<-n.watchDone
		err := n.raft.Shutdown().Error()
		n.leader.close()
		n.closeErr = errors.Join(err, n.trans.Close(), n.logs.Close())
	})
	return n.closeErr
}

// wait waits for a Raft future or for ctx.
func wait(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// raftError maps hashicorp/raft's errors onto this package's sentinels,
// keeping the original in the chain.
func raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", ErrNoLeader, err)
	default:
		return err
	}
}

// newTransport listens on addr and advertises the bound address, so that
// port 0 works. The address must name a host others can dial.
func newTransport(addr string, ln net.Listener, stream raft.StreamLayer, logger hclog.Logger) (*raft.NetworkTransport, error) {
	if stream != nil {
		return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: stream, MaxPool: 3, Timeout: 2 * time.Second, Logger: logger,
		}), nil
	}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("raft address %q: %w", addr, err)
		}
	}
	bound := ln.Addr().(*net.TCPAddr)
	if bound.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft address %q: an address others can dial is required, not %s: %w", addr, bound.IP, ErrInvalid)
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &tcpStream{ln: ln},
		MaxPool: 3,
		Timeout: 2 * time.Second,
		Logger:  logger,
	}), nil
}

// tcpStream is raft's stream layer over our own listener.
type tcpStream struct{ ln net.Listener }

func (s *tcpStream) Accept() (net.Conn, error) { return s.ln.Accept() }
func (s *tcpStream) Close() error              { return s.ln.Close() }
func (s *tcpStream) Addr() net.Addr            { return s.ln.Addr() }

func (s *tcpStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(addr), timeout)
}

// logCacheSize is how many recent entries are kept in memory in front of the
// log file: followers that fall a little behind, and the FSM, read them from
// there instead of from bbolt.
const logCacheSize = 1024

func (n *Node) logCache() raft.LogStore {
	c, err := raft.NewLogCache(logCacheSize, n.logStore)
	if err != nil {
		// Only a size below one is refused.
		panic(err)
	}
	return c
}
