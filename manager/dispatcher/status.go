package dispatcher

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/shoal-sched/shoal/raftstore"
)

// queueStatuses adds an agent's reports to the next batch; a newer report
// of a task replaces an older one that was not committed yet.
func (d *Dispatcher) queueStatuses(nodeID string, ups []raftstore.TaskStatusUpdate) {
	if len(ups) == 0 {
		return
	}
	d.statusMu.Lock()
	m := d.statuses[nodeID]
	if m == nil {
		m = make(map[string]raftstore.TaskStatusUpdate, len(ups))
		d.statuses[nodeID] = m
	}
	for _, u := range ups {
		m[u.TaskID] = u
	}
	d.statusMu.Unlock()
	select {
	case d.statusKick <- struct{}{}:
	default:
	}
}

// takeStatuses returns the queued reports as one command per node, sorted
// by node, and empties the queue.
func (d *Dispatcher) takeStatuses(at time.Time) []raftstore.Command {
	d.statusMu.Lock()
	queued := d.statuses
	d.statuses = make(map[string]map[string]raftstore.TaskStatusUpdate, len(queued))
	d.statusMu.Unlock()
	nodes := make([]string, 0, len(queued))
	for n := range queued {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	cmds := make([]raftstore.Command, 0, len(nodes))
	for _, n := range nodes {
		ups := make([]raftstore.TaskStatusUpdate, 0, len(queued[n]))
		for _, u := range queued[n] {
			ups = append(ups, u)
		}
		sort.Slice(ups, func(i, j int) bool { return ups[i].TaskID < ups[j].TaskID })
		cmds = append(cmds, raftstore.UpdateTaskStatus{NodeID: n, Updates: ups, At: at})
	}
	return cmds
}

// requeue puts back reports that failed to commit, unless newer ones came.
func (d *Dispatcher) requeue(cmds []raftstore.Command) {
	d.statusMu.Lock()
	defer d.statusMu.Unlock()
	for _, c := range cmds {
		u, ok := c.(raftstore.UpdateTaskStatus)
		if !ok {
			continue
		}
		m := d.statuses[u.NodeID]
		if m == nil {
			m = make(map[string]raftstore.TaskStatusUpdate, len(u.Updates))
			d.statuses[u.NodeID] = m
		}
		for _, up := range u.Updates {
			if _, newer := m[up.TaskID]; !newer {
				m[up.TaskID] = up
			}
		}
	}
}

// flushStatuses commits the queued reports: it waits statusDelay after the
// first one so that reports from every session share one Raft entry.
func (d *Dispatcher) flushStatuses(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.statusKick:
		}
		t := time.NewTimer(statusDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		cmds := d.takeStatuses(d.now())
		if len(cmds) == 0 {
			continue
		}
		if err := d.applyAll(ctx, cmds...); err != nil {
			d.statusFailed(ctx, cmds, err)
		}
	}
}

// statusFailed handles a batch that did not commit. On a manager that no
// longer leads the reports are dropped: the agents send their statuses
// again to the new leader when they reconnect.
func (d *Dispatcher) statusFailed(ctx context.Context, cmds []raftstore.Command, err error) {
	if ctx.Err() != nil {
		return
	}
	if errors.Is(err, raftstore.ErrNotLeader) || !d.cfg.IsLeader() {
		d.log.Info("status batch not committed: no longer the leader; agents resend on reconnect", "nodes", len(cmds), "err", err)
		return
	}
	if !errors.Is(err, raftstore.ErrNoLeader) && !errors.Is(err, context.DeadlineExceeded) {
		// A refusal by the state will not change on a retry.
		d.log.Error("status batch refused", "nodes", len(cmds), "err", err)
		return
	}
	d.log.Warn("status batch not committed, will retry", "nodes", len(cmds), "err", err)
	d.requeue(cmds)
	select {
	case d.statusKick <- struct{}{}:
	default:
	}
}
