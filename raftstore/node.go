package raftstore

// Not built yet: the Raft member. The signatures are the contract.

import (
	"context"
	"log/slog"
	"time"
)

// Config configures a Raft member.
type Config struct {
	ID       string // stable member id (kept in DataDir after the first start)
	DataDir  string // raft-wal log, stable store, snapshots
	RaftAddr string // bind and advertise address for Raft TCP
	// Bootstrap makes a new single-member cluster if DataDir holds none.
	Bootstrap bool
	// ForceNewCluster restarts this member alone with all its state.
	ForceNewCluster bool
	// Timeouts; zero values take LAN-tuned defaults.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// ApplyTimeout bounds Apply when there is no leader (default 5 s).
	ApplyTimeout      time.Duration
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	Logger            *slog.Logger
}

// Node is one Raft member with its FSM over a State.
type Node struct{}

// Open starts (or restarts from DataDir) a Raft member.
func Open(cfg Config) (*Node, error) { panic("raftstore: not built yet") }

// State is the member's FSM state (on a follower it may lag the leader).
func (n *Node) State() *State { panic("raftstore: not built yet") }

// Apply commits cmd. On a follower it returns ErrNotLeader at once; with no
// leader it returns ErrNoLeader within ApplyTimeout.
func (n *Node) Apply(ctx context.Context, cmd Command) (Response, error) {
	panic("raftstore: not built yet")
}

// IsLeader reports whether this member is the leader now.
func (n *Node) IsLeader() bool { panic("raftstore: not built yet") }

// LeadershipChanges returns a channel that receives true when this member
// becomes leader and false when it stops being one. Each call gets its own
// channel; cancel releases it.
func (n *Node) LeadershipChanges() (ch <-chan bool, cancel func()) {
	panic("raftstore: not built yet")
}

// Leader returns the current leader's id and Raft address ("" if none).
func (n *Node) Leader() (id, raftAddr string) { panic("raftstore: not built yet") }

// VerifyLeader confirms leadership with a quorum and waits until the FSM has
// applied everything committed (a barrier), for fresh reads.
func (n *Node) VerifyLeader(ctx context.Context) error { panic("raftstore: not built yet") }

// AddVoter adds (or re-adds) a member.
func (n *Node) AddVoter(ctx context.Context, id, raftAddr string) error {
	panic("raftstore: not built yet")
}

// RemoveServer removes a member.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	panic("raftstore: not built yet")
}

// Member is one server in the Raft configuration.
type Member struct {
	ID       string
	RaftAddr string
	Voter    bool
}

// Members returns the Raft configuration.
func (n *Node) Members() ([]Member, error) { panic("raftstore: not built yet") }

// Stats is what `cluster status` shows of this member.
type Stats struct {
	ID           string
	State        string // leader | follower | candidate | shutdown
	Term         uint64
	LastIndex    uint64
	CommitIndex  uint64
	AppliedIndex uint64
}

// Stats returns this member's Raft figures.
func (n *Node) Stats() Stats { panic("raftstore: not built yet") }

// Close shuts the member down (it keeps its data for a restart).
func (n *Node) Close() error { panic("raftstore: not built yet") }
