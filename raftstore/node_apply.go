package raftstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// leaderPoll is how often Apply looks for a leader while there is none.
const leaderPoll = 10 * time.Millisecond

// Apply commits cmd. On a follower it returns ErrNotLeader at once; with no
// leader it returns ErrNoLeader within ApplyTimeout. A domain rejection is
// returned as the error with the entry's index in the Response.
//
// If leadership is lost while the entry is in flight, or the wait for it
// ends, the entry may or may not commit later: the error then wraps
// ErrCommitUncertain as well as ErrNotLeader (another member leads now),
// ErrNoLeader or the caller's context error. Only a Request is safe to send
// again after that.
func (n *Node) Apply(ctx context.Context, cmd Command) (Response, error) {
	data, err := EncodeCommand(cmd)
	if err != nil {
		return Response{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	for {
		if err := n.awaitLeadership(ctx); err != nil {
			return Response{}, err
		}
		start := time.Now()
		res, index, err := n.propose(ctx, cmd, data)
		switch {
		case err == nil:
			n.metrics.observeCommit(time.Since(start))
			if res.firstIndex != 0 {
				index = res.firstIndex
			}
			return Response{Index: index, Value: res.value}, res.err
		case errors.Is(err, raft.ErrNotLeader):
			// Not dispatched: safe to try again once there is a leader.
			continue
		case errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, errWithdrawn):
			// Not dispatched either: the leader did not take it in time.
			return Response{}, n.noLeader(ctx, err)
		case errors.Is(err, raft.ErrLeadershipLost):
			if lerr := n.awaitLeadership(ctx); lerr != nil {
				return Response{}, fmt.Errorf("%w: %w: %w", ErrCommitUncertain, lerr, err)
			}
			return Response{}, fmt.Errorf("%w: %w: leadership lost and regained: %w", ErrCommitUncertain, ErrNotLeader, err)
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil, errors.Is(err, context.Canceled):
			return Response{}, fmt.Errorf("%w: %w", ErrCommitUncertain, n.noLeader(ctx, err))
		default:
			return Response{}, fmt.Errorf("%w: apply: %w", ErrCommitUncertain, err)
		}
	}
}

// errWithdrawn: the caller's wait ended while its command was still
// queued in the proposer; it was never proposed.
var errWithdrawn = errors.New("withdrawn before it was proposed")

// propose hands the encoded cmd to Raft, through the proposer when
// batching is on, and waits for its entry. A Batch goes alone: wrapping
// it in another would nest it one level deeper than its sender checked.
func (n *Node) propose(ctx context.Context, cmd Command, data []byte) (result, uint64, error) {
	if _, isBatch := deref(cmd).(Batch); n.proposer == nil || isBatch {
		deadline, _ := ctx.Deadline()
		f := n.raft.Apply(data, time.Until(deadline))
		if err := wait(ctx, f); err != nil {
			return result{}, 0, err
		}
		res, _ := f.Response().(result)
		return res, f.Index(), nil
	}
	pr := n.proposer.submit(data)
	select {
	case o := <-pr.done:
		return o.res, o.index, o.err
	case <-ctx.Done():
		if n.proposer.withdraw(pr) {
			return result{}, 0, fmt.Errorf("%w: %w", errWithdrawn, ctx.Err())
		}
		return result{}, 0, ctx.Err()
	}
}

// noLeader says why Apply gave up: the caller's context, or the apply
// timeout with no working leader.
func (n *Node) noLeader(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.DeadlineExceeded) {
		return cause
	}
	return fmt.Errorf("%w (waited %s): %w", ErrNoLeader, n.cfg.ApplyTimeout, err)
}

// awaitLeadership returns nil when this member leads, ErrNotLeader as soon
// as another member does, and ErrNoLeader if neither happens before ctx
// ends.
func (n *Node) awaitLeadership(ctx context.Context) error {
	tick := time.NewTicker(leaderPoll)
	defer tick.Stop()
	for {
		if n.raft.State() == raft.Leader {
			return nil
		}
		if n.raft.State() == raft.Shutdown {
			return fmt.Errorf("raft member %s: %w", n.id, raft.ErrRaftShutdown)
		}
		if addr, id := n.raft.LeaderWithID(); id != "" && string(id) != n.id {
			return fmt.Errorf("%w: the leader is %s at %s", ErrNotLeader, id, addr)
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("%w (waited %s)", ErrNoLeader, n.cfg.ApplyTimeout)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}
