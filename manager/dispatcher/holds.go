package dispatcher

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// A planned agent restart: the agent says it stops now and will be back
// within a hold. The leader commits the node as restarting with the
// deadline (so that every manager, and every later leader, agrees on it),
// keeps its tasks, ignores gossip declaring it dead, and marks it down only
// when the deadline passes without the agent back. The agent coming back
// (a new session) makes the node ready again.

// holdRestart commits the restart notice of s's agent and returns the ack.
func (d *Dispatcher) holdRestart(ctx context.Context, s *session, r *shoalpb.Restarting) *shoalpb.ManagerMessage {
	ack := &shoalpb.RestartAck{}
	out := &shoalpb.ManagerMessage{Msg: &shoalpb.ManagerMessage_RestartAck{RestartAck: ack}}
	var hold time.Duration
	if r.GetHold() != nil {
		if err := r.GetHold().CheckValid(); err != nil {
			ack.Error = fmt.Sprintf("restarting.hold: %v", err)
			return out
		}
		hold = r.GetHold().AsDuration()
	}
	if err := api.CheckRestartHold(hold); err != nil {
		ack.Error = "restarting.hold: " + err.Error()
		return out
	}
	n := d.cfg.State.Read().Node(s.nodeID)
	if n == nil || n.Status == api.NodeDown {
		ack.Error = fmt.Sprintf("node %s is not registered as up here; nothing to hold", s.nodeID)
		return out
	}
	now := d.now()
	deadline := now.Add(hold)
	err := commitOne(ctx, d.cfg.Applier, raftstore.SetNodeStatus{
		ID: n.ID, Status: api.NodeRestarting, RestartDeadline: deadline, At: now, ExpectedVersion: n.Version,
		Message: fmt.Sprintf("the agent is restarting and will be back within %s", hold),
	})
	if err != nil {
		ack.Error = fmt.Sprintf("hold of node %s not committed: %v", n.ID, err)
		d.log.Warn("restart notice not committed", "node_id", n.ID, "hold", hold, "err", err)
		return out
	}
	d.live.hold(n.ID, deadline)
	d.log.Info("node restarting: holding its tasks", "node_id", n.ID, "hostname", n.Hostname, "hold", hold, "deadline", deadline)
	ack.Deadline = timestamppb.New(deadline)
	return out
}

// hold notes a committed restart hold.
func (l *liveness) hold(id string, deadline time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.leading {
		l.holds[id] = deadline
		delete(l.suspects, id)
		delete(l.due, id)
	}
}

// held reports (and logs) whether n is restarting within its hold, so that
// what is said of it (why) is ignored.
func (l *liveness) held(n *api.Node, why string) bool {
	if n.Status != api.NodeRestarting || !l.now().Before(n.RestartDeadline) {
		return false
	}
	l.log.Info("ignoring: the node is restarting within its hold", "node_id", n.ID, "event", why, "deadline", n.RestartDeadline)
	return true
}

// expireHolds marks down, in one entry, the restarting nodes whose hold
// passed without their agent back.
func (l *liveness) expireHolds(ctx context.Context) {
	now := l.now()
	v := l.state.Read()
	var downs nodeDowns
	l.mu.Lock()
	for id := range l.holds {
		n := v.Node(id)
		if n == nil || n.Status != api.NodeRestarting {
			delete(l.holds, id) // back, down or removed
			continue
		}
		if now.Before(n.RestartDeadline) || l.sessions.get(id) != nil {
			continue
		}
		msg := fmt.Sprintf("its agent did not come back within its restart hold (deadline %s)", n.RestartDeadline.UTC().Format(time.RFC3339))
		downs.add(n, l.downCmd(n, msg), CauseRestartHold)
	}
	l.mu.Unlock()
	l.commitDowns(ctx, downs, "nodes down: restart hold passed")
}
