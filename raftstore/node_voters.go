package raftstore

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"
)

// AddNonvoter adds a standby member: it receives the log but has no vote,
// so it neither counts for a quorum nor can lead. A member that is a voter
// already keeps its vote (Raft only updates its address).
func (n *Node) AddNonvoter(ctx context.Context, id, raftAddr string) error {
	if id == "" || raftAddr == "" {
		return fmt.Errorf("add non-voter %q at %q: id and address are required: %w", id, raftAddr, ErrInvalid)
	}
	f := n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, n.cfg.ApplyTimeout)
	if err := wait(ctx, f); err != nil {
		return fmt.Errorf("add non-voter %q at %s: %w", id, raftAddr, raftError(err))
	}
	return nil
}

// DemoteVoter takes member id's vote away; it stays in the configuration
// as a non-voter and keeps following the log.
func (n *Node) DemoteVoter(ctx context.Context, id string) error {
	f := n.raft.DemoteVoter(raft.ServerID(id), 0, n.cfg.ApplyTimeout)
	if err := wait(ctx, f); err != nil {
		return fmt.Errorf("demote member %q: %w", id, raftError(err))
	}
	return nil
}
