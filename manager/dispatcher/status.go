package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/shoal-sched/shoal/raftstore"
)

const (
	// statusDelay is how long status reports are collected, across all
	// sessions, before they are committed.
	statusDelay = 5 * time.Millisecond
	// maxStatusesPerEntry bounds the reports of one Raft entry. A burst
	// (every agent resending its statuses to a new leader) is committed
	// as several entries of bounded size, not one huge one: a report is at
	// most a few hundred bytes (and never over maxReportTextBytes), so an
	// entry stays at a few MiB at worst, far under what the log may hold.
	maxStatusesPerEntry = 2048
)

// statusBatcher commits the agents' task statuses. It keeps only the latest
// report of each task until it is committed.
type statusBatcher struct {
	applier  raftstore.Applier
	isLeader func() bool
	log      *slog.Logger
	now      func() time.Time
	kick     chan struct{}

	mu     sync.Mutex
	queued map[string]map[string]raftstore.TaskStatusUpdate // node → task → latest
}

func newStatusBatcher(cfg Config, log *slog.Logger, now func() time.Time) *statusBatcher {
	return &statusBatcher{
		applier: cfg.Applier, isLeader: cfg.IsLeader, log: log, now: now,
		kick: make(chan struct{}, 1), queued: make(map[string]map[string]raftstore.TaskStatusUpdate),
	}
}

// queue adds an agent's reports to the next batch; a newer report of a task
// replaces an older one that was not committed yet.
func (b *statusBatcher) queue(nodeID string, ups []raftstore.TaskStatusUpdate) {
	if len(ups) == 0 {
		return
	}
	b.mu.Lock()
	m := b.queued[nodeID]
	if m == nil {
		m = make(map[string]raftstore.TaskStatusUpdate, len(ups))
		b.queued[nodeID] = m
	}
	for _, u := range ups {
		m[u.TaskID] = u
	}
	b.mu.Unlock()
	b.poke()
}

func (b *statusBatcher) poke() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// take empties the queue and returns its reports as Raft entries: each a
// list of per-node commands, sorted by node and task, with at most
// maxStatusesPerEntry reports in all (a node's reports may span entries).
func (b *statusBatcher) take(at time.Time) [][]raftstore.Command {
	b.mu.Lock()
	queued := b.queued
	b.queued = make(map[string]map[string]raftstore.TaskStatusUpdate, len(queued))
	b.mu.Unlock()
	nodes := make([]string, 0, len(queued))
	for n := range queued {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	var entries [][]raftstore.Command
	var cur []raftstore.Command
	room, size := maxStatusesPerEntry, 0
	for _, n := range nodes {
		ups := make([]raftstore.TaskStatusUpdate, 0, len(queued[n]))
		for _, u := range queued[n] {
			ups = append(ups, u)
		}
		sort.Slice(ups, func(i, j int) bool { return ups[i].TaskID < ups[j].TaskID })
		start := 0
		for i, u := range ups {
			sz := reportBytes(u)
			if room == 0 || (size > 0 && size+sz > maxStatusBytesPerEntry) {
				if i > start {
					cur = append(cur, raftstore.UpdateTaskStatus{NodeID: n, Updates: ups[start:i], At: at})
				}
				entries, cur, room, size, start = append(entries, cur), nil, maxStatusesPerEntry, 0, i
			}
			room, size = room-1, size+sz
		}
		if len(ups) > start {
			cur = append(cur, raftstore.UpdateTaskStatus{NodeID: n, Updates: ups[start:], At: at})
		}
	}
	if len(cur) > 0 {
		entries = append(entries, cur)
	}
	return entries
}

// maxStatusBytesPerEntry bounds the text of the reports of one entry, well
// under raftstore.MaxEntryBytes: reports with long messages or probe
// output (each up to maxReportTextBytes plus a health log) are spread over
// more entries.
const maxStatusBytesPerEntry = 2 << 20

// reportBytes is about what a report takes in an entry.
func reportBytes(u raftstore.TaskStatusUpdate) int {
	st := u.Status
	n := 256 + len(u.TaskID) + len(st.Message) + len(st.Err) + len(st.ContainerID) + len(st.PendingReason)
	for _, r := range st.HealthLog {
		n += 128 + 2*len(r.Output) // JSON may escape output
	}
	return n
}

// requeue puts back reports that failed to commit, unless newer ones came.
func (b *statusBatcher) requeue(cmds []raftstore.Command) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range cmds {
		u, ok := c.(raftstore.UpdateTaskStatus)
		if !ok {
			continue
		}
		m := b.queued[u.NodeID]
		if m == nil {
			m = make(map[string]raftstore.TaskStatusUpdate, len(u.Updates))
			b.queued[u.NodeID] = m
		}
		for _, up := range u.Updates {
			if _, newer := m[up.TaskID]; !newer {
				m[up.TaskID] = up
			}
		}
	}
}

// run commits the queued reports: it waits statusDelay after the first one
// so that reports from every session share entries.
func (b *statusBatcher) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.kick:
		}
		t := time.NewTimer(statusDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		entries := b.take(b.now())
		for i, entry := range entries {
			if !b.commitEntry(ctx, entry) {
				// No leader to commit to: the rest waits for a retry too.
				for _, rest := range entries[i+1:] {
					b.requeue(rest)
				}
				break
			}
		}
	}
}

// commitEntry commits one entry; it reports false when there was no
// leader to commit to. An entry of several nodes that the state or the log
// refuses as a whole (it cannot be encoded, say) is committed node by node,
// so that one node's bad report costs only that node's.
func (b *statusBatcher) commitEntry(ctx context.Context, entry []raftstore.Command) bool {
	_, err := commit(ctx, b.applier, entry)
	switch {
	case err == nil:
		return true
	case retryable(err) || ctx.Err() != nil:
		b.failed(ctx, entry, err)
		return false
	case len(entry) == 1:
		b.failed(ctx, entry, err)
		return true
	}
	b.log.Warn("status entry refused as a whole; committing it node by node", "nodes", len(entry), "err", err)
	for i, cmd := range entry {
		if _, err := commit(ctx, b.applier, []raftstore.Command{cmd}); err != nil {
			b.failed(ctx, []raftstore.Command{cmd}, err)
			if retryable(err) {
				b.requeue(entry[i+1:])
				return false
			}
		}
	}
	return true
}

// retryable reports whether a commit failed for want of a working leader.
func retryable(err error) bool {
	return errors.Is(err, raftstore.ErrNotLeader) || errors.Is(err, raftstore.ErrNoLeader) || errors.Is(err, context.DeadlineExceeded)
}

// failed handles reports that did not commit. On a manager that no longer
// leads they are dropped: the agents send their statuses again to the new
// leader when they reconnect.
func (b *statusBatcher) failed(ctx context.Context, cmds []raftstore.Command, err error) {
	if ctx.Err() != nil {
		return
	}
	if errors.Is(err, raftstore.ErrNotLeader) || !b.isLeader() {
		b.log.Info("status reports not committed: no longer the leader; agents resend on reconnect", "commands", len(cmds), "err", err)
		return
	}
	if !retryable(err) {
		// A refusal will not change on a retry.
		b.log.Error("status reports refused", "commands", len(cmds), "err", err)
		return
	}
	b.log.Warn("status reports not committed, will retry", "commands", len(cmds), "err", err)
	b.requeue(cmds)
	b.poke()
}
