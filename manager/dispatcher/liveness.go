package dispatcher

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/membership"
	"github.com/shoal-sched/shoal/raftstore"
)

// ObserveMember feeds one gossip event to the liveness check. It never
// blocks; on a manager that does not lead the event is noted and ignored.
func (d *Dispatcher) ObserveMember(ev membership.Event) {
	d.memberMu.Lock()
	d.members = append(d.members, ev)
	d.memberMu.Unlock()
	select {
	case d.memberKick <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) takeMembers() []membership.Event {
	d.memberMu.Lock()
	defer d.memberMu.Unlock()
	evs := d.members
	d.members = nil
	return evs
}

// livenessTick is how often session loss is checked: a tenth of the grace
// period, within [10 ms, 100 ms].
func (d *Dispatcher) livenessTick() time.Duration {
	return min(max(d.cfg.GracePeriod/10, 10*time.Millisecond), 100*time.Millisecond)
}

// watchLiveness declares nodes down (gossip says dead or left, or no
// session for the grace period) and ready again (gossip says alive while a
// session is open). It also ends every session when leadership is lost.
func (d *Dispatcher) watchLiveness(ctx context.Context) error {
	t := time.NewTicker(d.livenessTick())
	defer t.Stop()
	var leaderSince time.Time
	leading, scanAll := false, false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-d.memberKick:
		}
		evs := d.takeMembers()
		if !d.cfg.IsLeader() {
			if leading {
				d.log.Info("no longer the leader: ending sessions")
			}
			leading = false
			d.closeSessions(ErrNotLeader)
			continue
		}
		now := d.now()
		if !leading {
			// Agents of the old leader need time to find this one: every
			// node gets a full grace period from now.
			leading, leaderSince, scanAll = true, now, true
			d.log.Info("leading: checking node liveness", "grace_period", d.cfg.GracePeriod)
		}
		for _, ev := range evs {
			d.observe(ctx, ev)
		}
		d.confirmSuspects(ctx)
		d.endSilentSessions()
		// Until one scan after the first grace period, every node without
		// a session may be lost; after it, only those whose session ended.
		if d.downLostNodes(ctx, now, leaderSince, scanAll) && now.Sub(leaderSince) >= d.cfg.GracePeriod {
			scanAll = false
		}
	}
}

// observe acts on one gossip event.
func (d *Dispatcher) observe(ctx context.Context, ev membership.Event) {
	id := ev.Meta.NodeID
	switch {
	case ev.Type == membership.EventFail:
		if !d.earlierIncarnation(ev) {
			d.suspect(ctx, id)
		}
	case ev.Type == membership.EventLeave || ev.Meta.Leaving:
		if !d.earlierIncarnation(ev) {
			d.down(ctx, id, "the node left the cluster")
		}
	case ev.Type == membership.EventJoin || ev.Type == membership.EventUpdate:
		d.mu.Lock()
		delete(d.suspects, id)
		d.mu.Unlock()
		d.back(ctx, id)
	}
}

// earlierIncarnation reports whether ev is about an agent that has since
// been replaced by the one holding the node's session: a restarted agent
// on a new address is in session at once, while gossip declares its
// predecessor dead only later.
func (d *Dispatcher) earlierIncarnation(ev membership.Event) bool {
	d.mu.Lock()
	s := d.sessions[ev.Meta.NodeID]
	d.mu.Unlock()
	if s == nil || ev.Meta.GRPCAddr == "" || s.agentAddr == "" || ev.Meta.GRPCAddr == s.agentAddr {
		return false
	}
	d.log.Info("ignoring gossip about an earlier incarnation of the node", "node_id", ev.Meta.NodeID,
		"event", ev.Type.String(), "old_agent_addr", ev.Meta.GRPCAddr, "agent_addr", s.agentAddr)
	return true
}

// down commits node id down (if it is a node and not down yet) and ends
// its session: an agent that is in fact alive reconnects and is ready again.
func (d *Dispatcher) down(ctx context.Context, id, msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.cfg.State.Read().Node(id)
	if n == nil {
		return
	}
	if n.Status != api.NodeDown {
		err := d.applyAll(ctx, raftstore.SetNodeStatus{ID: id, Status: api.NodeDown, Message: msg, At: d.now()})
		if err != nil {
			d.log.Error("could not mark node down", "node_id", id, "reason", msg, "err", err)
			return
		}
		d.log.Warn("node down", "node_id", id, "hostname", n.Hostname, "reason", msg)
	}
	if s := d.sessions[id]; s != nil {
		delete(d.sessions, id)
		s.end(fmt.Errorf("%w: %s", ErrNodeDown, msg))
	}
	delete(d.lost, id)
}

// back marks a down node ready again when gossip sees it alive and its
// agent holds a session.
func (d *Dispatcher) back(ctx context.Context, id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.cfg.State.Read().Node(id)
	if n == nil || n.Status != api.NodeDown || d.sessions[id] == nil {
		return
	}
	err := d.applyAll(ctx, raftstore.SetNodeStatus{ID: id, Status: api.NodeReady, Message: "the node is reachable again", At: d.now()})
	if err != nil {
		d.log.Error("could not mark node ready", "node_id", id, "err", err)
		return
	}
	d.log.Info("node ready again", "node_id", id, "hostname", n.Hostname)
}

// endSilentSessions ends sessions whose agent sent nothing for sessionTTL:
// their connection died without closing.
func (d *Dispatcher) endSilentSessions() {
	d.mu.Lock()
	var silent []*session
	for _, s := range d.sessions {
		if s.silentFor() > sessionTTL {
			silent = append(silent, s)
		}
	}
	d.mu.Unlock()
	for _, s := range silent {
		s.end(ErrSessionTimeout)
	}
}

// downLostNodes commits down every node that is not down and has had no
// session for the grace period (counted from when this manager started
// leading, at the earliest). It looks at every node when all is set, else
// only at those whose session ended here. It reports whether it committed
// what it found.
func (d *Dispatcher) downLostNodes(ctx context.Context, now, leaderSince time.Time, all bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	v := d.cfg.State.Read()
	var nodes []*api.Node
	if all {
		nodes = v.Nodes()
	} else {
		for id := range d.lost {
			if n := v.Node(id); n != nil {
				nodes = append(nodes, n)
			} else {
				delete(d.lost, id) // removed from the cluster
			}
		}
		sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	}
	var cmds []raftstore.Command
	var ids []string
	for _, n := range nodes {
		if n.Status == api.NodeDown || d.sessions[n.ID] != nil {
			continue
		}
		since := d.lost[n.ID]
		if since.Before(leaderSince) {
			since = leaderSince
		}
		gone := now.Sub(since)
		if gone < d.cfg.GracePeriod {
			continue
		}
		msg := fmt.Sprintf("no session with its agent for %s (grace period %s)", gone.Round(time.Millisecond), d.cfg.GracePeriod)
		cmds = append(cmds, raftstore.SetNodeStatus{ID: n.ID, Status: api.NodeDown, Message: msg, At: now})
		ids = append(ids, n.ID)
	}
	if len(cmds) == 0 {
		return true
	}
	sort.Strings(ids)
	if err := d.applyAll(ctx, cmds...); err != nil {
		d.log.Error("could not mark lost nodes down", "nodes", ids, "err", err)
		return false
	}
	for _, id := range ids {
		delete(d.lost, id)
	}
	d.log.Warn("nodes down: sessions lost", "nodes", ids, "grace_period", d.cfg.GracePeriod)
	return true
}

const gossipDead = "gossip declared the node dead: it stopped answering probes"

// suspect acts on gossip declaring node id dead: down at once unless its
// session has spoken within failConfirm, in which case the node is down
// only if the session falls silent too (confirmSuspects).
func (d *Dispatcher) suspect(ctx context.Context, id string) {
	d.mu.Lock()
	s := d.sessions[id]
	alive := s != nil && s.silentFor() < failConfirm
	if alive {
		d.suspects[id] = d.now()
	}
	d.mu.Unlock()
	if !alive {
		d.down(ctx, id, gossipDead)
		return
	}
	d.log.Info("gossip says the node is dead but its session is alive: waiting for the session to confirm", "node_id", id)
}

// confirmSuspects takes down the suspected nodes whose session has ended or
// fallen silent.
func (d *Dispatcher) confirmSuspects(ctx context.Context) {
	d.mu.Lock()
	var confirmed []string
	for id := range d.suspects {
		if s := d.sessions[id]; s == nil || s.silentFor() >= failConfirm {
			confirmed = append(confirmed, id)
			delete(d.suspects, id)
		}
	}
	d.mu.Unlock()
	sort.Strings(confirmed)
	for _, id := range confirmed {
		d.down(ctx, id, gossipDead+" and its session went silent")
	}
}
