package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

const (
	// joinAttemptTimeout bounds one JoinManager call.
	joinAttemptTimeout = 5 * time.Second
	// joinRetryInterval is the pause between join attempts.
	joinRetryInterval = 500 * time.Millisecond
	// recordCheckInterval is how often a manager checks that the state
	// records its current addresses.
	recordCheckInterval = time.Second
)

// joinIfNew asks the manager at cfg.Join to add this one to the Raft
// configuration, unless this manager is already a member (a restart with
// its data dir). It retries while the cluster has no leader, for at most
// JoinTimeout.
func (m *Manager) joinIfNew(ctx context.Context, node *raftstore.Node) error {
	if m.cfg.Join == "" {
		return nil
	}
	if isMember(node, m.id) {
		m.log.Info("raft state found: rejoining as the same member")
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.JoinTimeout)
	defer cancel()
	for {
		err := m.askToJoin(ctx, m.cfg.Join)
		if err == nil {
			m.log.Info("joined the cluster", "via", m.cfg.Join)
			return nil
		}
		if !retryableJoin(err) {
			return fmt.Errorf("join the cluster via %s: %w", m.cfg.Join, err)
		}
		m.log.Info("join not possible yet, retrying", "via", m.cfg.Join, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("join the cluster via %s: no success within %s: %w", m.cfg.Join, m.cfg.JoinTimeout, err)
		case <-time.After(joinRetryInterval):
		}
	}
}

func isMember(node *raftstore.Node, id string) bool {
	members, err := node.Members()
	if err != nil {
		return false
	}
	for _, mem := range members {
		if mem.ID == id {
			return true
		}
	}
	return false
}

// retryableJoin reports whether a join failed for want of a leader or a
// reachable manager, rather than because the request was refused.
func retryableJoin(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// askToJoin calls JoinManager on the manager at addr, which forwards it
// to the leader.
func (m *Manager) askToJoin(ctx context.Context, addr string) error {
	_, managerTLS, _ := m.tlsFor()
	conn, err := grpc.NewClient(addr, authz.DialOptions(managerTLS)...)
	if err != nil {
		return fmt.Errorf("dial manager %s: %w", addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, joinAttemptTimeout)
	defer cancel()
	rec := m.record()
	_, err = shoalpb.NewControlClient(conn).JoinManager(ctx, &shoalpb.JoinManagerRequest{
		Id: rec.ID, RaftAddr: rec.RaftAddr, Addr: rec.Addr, GossipAddr: rec.GossipAddr, NonVoter: m.cfg.Standby,
	})
	return err
}

// keepRecorded makes sure the state records this manager's current
// addresses: a member that restarts on new addresses (or whose join was
// committed to Raft but not recorded before the leader failed) asks again
// to be recorded, through any manager it knows, until it is. The leader
// records itself in its bookkeeping.
func (m *Manager) keepRecorded(ctx context.Context, node *raftstore.Node) {
	t := time.NewTicker(recordCheckInterval)
	defer t.Stop()
	for {
		// Wait first: right after a join the local state has not applied
		// the record yet.
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v := node.State().Read()
		// Only the addresses are this manager's to record; whether it
		// votes is the leader's (promote, demote).
		if rec, ok := v.Manager(m.id); ok && sameAddrs(rec, m.record()) {
			return
		}
		if leader, _ := node.Leader(); leader == m.id {
			continue
		}
		if err := m.askAny(ctx, v.Managers()); err != nil {
			m.log.Debug("could not record this manager's addresses yet", "err", err)
		}
	}
}

// askAny asks the recorded managers, then the join address, to record
// this manager, until one of them succeeds.
func (m *Manager) askAny(ctx context.Context, recs []api.Manager) error {
	var targets []string
	for _, rec := range recs {
		if rec.ID != m.id && rec.Addr != "" {
			targets = append(targets, rec.Addr)
		}
	}
	if m.cfg.Join != "" {
		targets = append(targets, m.cfg.Join)
	}
	var errs []error
	for _, addr := range targets {
		err := m.askToJoin(ctx, addr)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func sameAddrs(a, b api.Manager) bool {
	a.NonVoter, b.NonVoter = false, false
	return a == b
}
