package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/membership"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// liveness decides, on the leader, when a node is down and when it is ready
// again. Its inputs are gossip (events, and the view at takeover), the
// sessions, and the holds of restarting nodes (in the state). It decides
// under its lock and commits without it; it may take the session table's
// lock while holding its own, never the reverse.
type liveness struct {
	state    *raftstore.State
	applier  raftstore.Applier
	metrics  *Metrics
	isLeader func() bool
	gossip   func() membership.View
	sessions *sessionTable
	pace     *pacer // nil: the shortest period (tests)
	grace    time.Duration
	window   time.Duration
	log      *slog.Logger
	now      func() time.Time
	kick     chan struct{}

	mu      sync.Mutex
	leading bool
	events  []membership.Event
	// due are the nodes without a session and when they go down.
	due map[string]dueDown
	// suspects are nodes gossip declared dead while they held a session,
	// and when their session was last probed: they go down once a probe
	// goes unanswered (or the session ends).
	suspects map[string]time.Time
	// holds are the restarting nodes and their deadlines.
	holds map[string]time.Time
	// silentChecked is when endSilent last looked (liveness's goroutine
	// alone reads and writes it).
	silentChecked time.Time
}

// dueDown is a node without a session: down once wait has passed since.
type dueDown struct {
	since time.Time // the session's last word, or when this manager took over
	wait  time.Duration
	why   string // what wait is, for the node's status message
	cause string // what the node is down of, once wait has passed
}

func (d dueDown) at() time.Time { return d.since.Add(d.wait) }

func newLiveness(cfg Config, sessions *sessionTable, log *slog.Logger, now func() time.Time) *liveness {
	return &liveness{
		state: cfg.State, applier: cfg.Applier, metrics: cfg.Metrics, isLeader: cfg.IsLeader, gossip: cfg.Gossip, sessions: sessions,
		grace: cfg.GracePeriod, window: cfg.ReconnectWindow, log: log, now: now, kick: make(chan struct{}, 1),
		due: map[string]dueDown{}, suspects: map[string]time.Time{}, holds: map[string]time.Time{},
	}
}

// observe queues one gossip event; while not leading it drops it.
func (l *liveness) observe(ev membership.Event) {
	l.mu.Lock()
	if !l.leading {
		l.mu.Unlock()
		return
	}
	l.events = append(l.events, ev)
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func (l *liveness) takeEvents() []membership.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.events
	l.events = nil
	return evs
}

// tick is how often liveness is checked: a tenth of the grace period,
// within [10 ms, 100 ms].
func (l *liveness) tick() time.Duration {
	return min(max(l.grace/10, 10*time.Millisecond), 100*time.Millisecond)
}

// run checks liveness until ctx ends. It follows IsLeader itself: when this
// manager stops leading it forgets everything and ends every session; when
// it starts leading it takes over from the state and the gossip view.
func (l *liveness) run(ctx context.Context) error {
	t := time.NewTimer(l.tick())
	defer t.Stop()
	defer l.setFollowing()
	for {
		armed := time.Now()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			l.forgive(time.Since(armed) - l.tick())
		case <-l.kick:
			if !t.Stop() {
				<-t.C
			}
		}
		t.Reset(l.tick())
		if !l.isLeader() {
			if l.setFollowing() {
				l.log.Info("no longer the leader: ending sessions")
			}
			l.sessions.closeAll(ErrNotLeader)
			continue
		}
		if !l.isLeading() {
			l.takeOver()
		}
		l.check(ctx)
	}
}

// stallSlack is how late the liveness timer may fire before this manager
// counts itself stalled. Go timers run a few milliseconds late on a busy
// machine; being later than that means this process got no CPU.
const stallSlack = 100 * time.Millisecond

// forgive moves every deadline liveness counts (the waits of nodes without
// a session, the suspects, the sessions' silence) back by late, the time
// this manager could not run: a leader that was itself stalled (starved
// of CPU, paused for a long GC, its host frozen) has not heard its agents
// for that time through no fault of theirs. Without this, a stall of the
// leader's process downed every node whose grace ran out meanwhile, and
// the orphaned tasks and reconnects that followed loaded it further.
func (l *liveness) forgive(late time.Duration) {
	if late <= stallSlack {
		return
	}
	l.mu.Lock()
	for id, due := range l.due {
		due.since = due.since.Add(late)
		l.due[id] = due
	}
	for id, at := range l.suspects {
		l.suspects[id] = at.Add(late)
	}
	l.mu.Unlock()
	now := l.now()
	for _, s := range l.sessions.all() {
		s.excuse(late, now)
	}
	l.log.Warn("this manager was stalled; liveness deadlines moved back", "stalled", late.Round(time.Millisecond))
}

func (l *liveness) isLeading() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leading
}

// setFollowing forgets what liveness knew as the leader; it reports
// whether it was leading.
func (l *liveness) setFollowing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.leading
	l.leading, l.events = false, nil
	l.due, l.suspects, l.holds = map[string]dueDown{}, map[string]time.Time{}, map[string]time.Time{}
	return was
}

// check does one round: gossip events, suspects, silent sessions, nodes
// without a session, holds that ran out.
func (l *liveness) check(ctx context.Context) {
	for _, ev := range l.takeEvents() {
		l.handle(ctx, ev)
	}
	l.confirmSuspects(ctx)
	l.endSilent()
	l.downDue(ctx)
	l.expireHolds(ctx)
}

// endSilent ends the sessions silent for the session TTL at the current
// period. It looks every twentieth of the TTL, not every tick: 20 looks a
// second over 1,000 sessions were 1.6 % of an idle leader's core (a third
// of its whole budget at 5,000), for a TTL of 33 s.
func (l *liveness) endSilent() {
	ttl, now := inPeriods(sessionTTL, l.period()), l.now()
	if now.Sub(l.silentChecked) < ttl/20 {
		return
	}
	l.silentChecked = now
	l.sessions.endSilent(ttl, now)
}

// takeOver starts leading. Every node that was ready gets the reconnect
// window to open a session here, except those that the gossip view holds
// as gone, which get the grace period: their death is already confirmed
// once no session comes. Restarting nodes keep their committed hold.
func (l *liveness) takeOver() {
	l.mu.Lock()
	l.leading = true // events from now on are queued, and the view below is newer than any before
	l.mu.Unlock()
	now := l.now()
	gone := map[string]membership.Departure{}
	if l.gossip != nil {
		v := l.gossip()
		for _, g := range v.Gone {
			gone[g.Meta.NodeID] = g
		}
		for _, m := range v.Alive {
			delete(gone, m.NodeID)
		}
	}
	nodes := l.state.Read().Nodes()
	// The window is at the pace of the nodes that will open their
	// sessions here (a thousand agents need longer to come back than ten).
	window := inPeriods(l.window, l.period())
	l.mu.Lock()
	defer l.mu.Unlock()
	waiting, confirmed := 0, 0
	for _, n := range nodes {
		switch n.Status {
		case api.NodeRestarting:
			l.holds[n.ID] = n.RestartDeadline
		case api.NodeReady, api.NodeUnknown:
			if g, ok := gone[n.ID]; ok {
				l.due[n.ID] = dueDown{since: now, wait: l.grace, why: "grace period; gossip saw it " + departed(g), cause: departedCause(g)}
				confirmed++
				continue
			}
			l.due[n.ID] = dueDown{since: now, wait: window, why: "reconnect window after a leader change", cause: CauseReconnectWindow}
			waiting++
		}
	}
	l.log.Info("leading: checking node liveness", "grace_period", l.grace, "reconnect_window", window,
		"nodes_waited_for", waiting, "nodes_gone_in_gossip", confirmed, "restart_holds", len(l.holds))
}

func departed(g membership.Departure) string {
	if g.Left {
		return "leave"
	}
	return "fail"
}

func departedCause(g membership.Departure) string {
	if g.Left {
		return CauseLeave
	}
	return CauseGossip
}

// Mass loss: when at least massLossMin nodes, and at least one in
// massLossShare of the nodes this leader knows sessions of, are without a
// session at once, the cause is on this side (the leader starved of CPU,
// its own link cut, a flood of reconnects), not in every one of those
// nodes. Their sessions then get the reconnect window instead of the
// grace period. Downing them would orphan their tasks and start their
// replacements, loading the leader further: on a loaded two-core machine
// a thousand agents lost their sessions in waves and each wave downed
// hundreds of live nodes. A death gossip confirms is not held back.
const (
	massLossMin   = 3
	massLossShare = 10
)

// sessionEnded starts the grace period of a node whose session ended, or
// the reconnect window when many nodes lost their session together.
func (l *liveness) sessionEnded(nodeID string, lastSeen time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.leading {
		return
	}
	l.due[nodeID] = dueDown{since: lastSeen, wait: l.grace, why: "grace period", cause: CauseSession}
	lost := 0
	for _, due := range l.due {
		if due.cause == CauseSession {
			lost++
		}
	}
	if lost < massLossMin || lost*massLossShare < lost+l.sessions.count() {
		return
	}
	window := inPeriods(l.window, l.period())
	for id, due := range l.due {
		if due.cause == CauseSession && due.wait < window {
			due.wait, due.why = window, fmt.Sprintf("reconnect window: %d nodes lost their session together", lost)
			l.due[id] = due
		}
	}
}

// probeWait is how long a probed session has to answer before gossip's
// "dead" takes its node down: failConfirm at the current period, but no
// longer than at a 1 s one. The agent answers a probe at once, not at its
// next beat, so a long period (a large cluster) does not lengthen it; a
// starved agent (a busy machine, where gossip probes are missed too) is
// still given as long as at 1,000 agents.
func (l *liveness) probeWait() time.Duration {
	return inPeriods(failConfirm, min(l.period(), time.Second))
}

// probe asks the agent of session s for a heartbeat at once.
func (l *liveness) probe(s *session) {
	if l.pace == nil {
		s.tell(&shoalpb.ManagerMessage{Msg: &shoalpb.ManagerMessage_Heartbeat{Heartbeat: &shoalpb.Heartbeat{Probe: true}}})
		return
	}
	s.tell(l.pace.probe())
}

// period is the heartbeat period the agents are asked for.
func (l *liveness) period() time.Duration {
	if l.pace == nil {
		return minHeartbeatPeriod
	}
	return l.pace.period()
}

// forget drops what liveness tracks of a node that is down (or back).
func (l *liveness) forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.due, id)
	delete(l.suspects, id)
	delete(l.holds, id)
}

// handle acts on one gossip event.
func (l *liveness) handle(ctx context.Context, ev membership.Event) {
	n := l.state.Read().Node(ev.Meta.NodeID)
	if n == nil {
		return // a manager, or a node that never registered
	}
	switch {
	case ev.Type == membership.EventFail:
		if !l.earlierIncarnation(ev) && !l.held(n, "gossip declared the node dead") {
			l.suspect(ctx, n)
		}
	case ev.Type == membership.EventLeave || ev.Meta.Leaving:
		if !l.earlierIncarnation(ev) {
			l.down(ctx, n, CauseLeave, "the node left the cluster")
		}
	case ev.Type == membership.EventJoin || ev.Type == membership.EventUpdate:
		l.mu.Lock()
		delete(l.suspects, n.ID)
		l.mu.Unlock()
		l.back(ctx, n)
	}
}

// earlierIncarnation reports whether ev is about an agent that has since
// been replaced by the one holding the node's session: a restarted agent
// on a new address is in session at once, while gossip declares its
// predecessor dead only later.
func (l *liveness) earlierIncarnation(ev membership.Event) bool {
	s := l.sessions.get(ev.Meta.NodeID)
	if s == nil || ev.Meta.GRPCAddr == "" || s.agentAddr == "" || ev.Meta.GRPCAddr == s.agentAddr {
		return false
	}
	l.log.Info("ignoring gossip about an earlier incarnation of the node", "node_id", ev.Meta.NodeID,
		"event", ev.Type.String(), "old_agent_addr", ev.Meta.GRPCAddr, "agent_addr", s.agentAddr)
	return true
}

// down commits node n down of cause (unless it is down already, or changed
// since it was read) and ends its session: an agent that is in fact alive
// reconnects and is ready again.
func (l *liveness) down(ctx context.Context, n *api.Node, cause, msg string) {
	if n.Status != api.NodeDown {
		err := commitOne(ctx, l.applier, l.downCmd(n, msg))
		if errors.Is(err, raftstore.ErrConflict) || errors.Is(err, raftstore.ErrNotFound) {
			l.log.Info("node changed before it could be marked down; left alone", "node_id", n.ID, "reason", msg)
			return
		}
		if err != nil {
			l.log.Error("could not mark node down", "node_id", n.ID, "reason", msg, "err", err)
			return
		}
		l.metrics.nodeDowned(cause)
		l.log.Warn("node down", "node_id", n.ID, "hostname", n.Hostname, "cause", cause, "reason", msg)
	}
	l.sessions.endNode(n.ID, fmt.Errorf("%w: %s", ErrNodeDown, msg))
	l.forget(n.ID)
}

// downCmd marks n down if it is still as it was read.
func (l *liveness) downCmd(n *api.Node, msg string) raftstore.SetNodeStatus {
	return raftstore.SetNodeStatus{ID: n.ID, Status: api.NodeDown, Message: msg, At: l.now(), ExpectedVersion: n.Version}
}

// back marks a down node ready again when gossip sees it alive and its
// agent holds a session.
func (l *liveness) back(ctx context.Context, n *api.Node) {
	if n.Status != api.NodeDown || l.sessions.get(n.ID) == nil {
		return
	}
	err := commitOne(ctx, l.applier, raftstore.SetNodeStatus{
		ID: n.ID, Status: api.NodeReady, Message: "the node is reachable again", At: l.now(), ExpectedVersion: n.Version,
	})
	if err != nil {
		l.log.Info("could not mark node ready", "node_id", n.ID, "err", err)
		return
	}
	l.log.Info("node ready again", "node_id", n.ID, "hostname", n.Hostname)
}

const gossipDead = "gossip declared the node dead: it stopped answering probes"

// suspect acts on gossip declaring node n dead: down at once without a
// session, or with one already silent for failConfirm at the current
// period (a live agent's never is); otherwise the session is probed, and
// the node is down only if the probe goes unanswered (confirmSuspects).
func (l *liveness) suspect(ctx context.Context, n *api.Node) {
	if s := l.sessions.get(n.ID); s != nil && s.silentFor() < inPeriods(failConfirm, l.period()) {
		l.mu.Lock()
		l.suspects[n.ID] = l.now()
		l.mu.Unlock()
		l.probe(s)
		l.log.Info("gossip says the node is dead but it holds a session: probing the session", "node_id", n.ID)
		return
	}
	l.down(ctx, n, CauseGossip, gossipDead)
}

// confirmSuspects takes down the suspected nodes whose session has ended or
// left a probe unanswered for probeWait. A session that answered is probed
// again once probeWait has passed, for as long as gossip holds the node
// dead.
func (l *liveness) confirmSuspects(ctx context.Context) {
	l.mu.Lock()
	ids := make([]string, 0, len(l.suspects))
	for id := range l.suspects {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	sort.Strings(ids)
	v := l.state.Read()
	wait, now := l.probeWait(), l.now()
	for _, id := range ids {
		l.mu.Lock()
		probed, ok := l.suspects[id]
		l.mu.Unlock()
		s := l.sessions.get(id)
		if !ok || (s != nil && now.Sub(probed) < wait) {
			continue
		}
		if s != nil && !s.lastSeen().Before(probed) {
			l.mu.Lock()
			l.suspects[id] = now
			l.mu.Unlock()
			l.probe(s)
			continue
		}
		l.mu.Lock()
		delete(l.suspects, id)
		l.mu.Unlock()
		if n := v.Node(id); n != nil && !l.held(n, "gossip declared the node dead") {
			l.down(ctx, n, CauseGossip, gossipDead+" and its session did not answer a probe")
		}
	}
}

// downDue commits down, in one entry, every node whose wait without a
// session has passed.
func (l *liveness) downDue(ctx context.Context) {
	now := l.now()
	v := l.state.Read()
	var downs nodeDowns
	l.mu.Lock()
	for id, due := range l.due {
		n := v.Node(id)
		if n != nil && n.Status == api.NodeRestarting {
			// Its hold counts now. A new leader that read its state before
			// applying the hold's entry took the node for ready: the hold
			// is kept here, so that it still expires.
			l.holds[id] = n.RestartDeadline
		}
		if n == nil || n.Status == api.NodeDown || n.Status == api.NodeRestarting || l.sessions.get(id) != nil {
			delete(l.due, id) // removed, down, held or back: nothing to wait for
			continue
		}
		if now.Before(due.at()) {
			continue
		}
		msg := fmt.Sprintf("no session with its agent for %s (%s %s)", now.Sub(due.since).Round(time.Millisecond), due.why, due.wait)
		downs.add(n, l.downCmd(n, msg), due.cause)
	}
	l.mu.Unlock()
	l.commitDowns(ctx, downs, "nodes down: no session")
}

// commitDowns commits the downs in one entry and forgets the nodes that
// are down or changed since.
func (l *liveness) commitDowns(ctx context.Context, d nodeDowns, what string) {
	nodes, cmds := d.nodes, d.cmds
	if len(cmds) == 0 {
		return
	}
	sort.Sort(d)
	errs, err := commit(ctx, l.applier, cmds)
	if err != nil {
		l.log.Error("could not mark nodes down", "nodes", nodeIDs(nodes), "err", err)
		return
	}
	var down []string
	for i, n := range nodes {
		if errs[i] == nil {
			down = append(down, n.ID)
			l.metrics.nodeDowned(d.causes[i])
			l.sessions.endNode(n.ID, fmt.Errorf("%w: %s", ErrNodeDown, cmds[i].(raftstore.SetNodeStatus).Message))
		}
		l.forget(n.ID) // down, or it changed (came back): a new session restarts its clock
	}
	if len(down) > 0 {
		l.log.Warn(what, "nodes", down, "grace_period", l.grace)
	}
}

// nodeDowns are nodes to mark down with their commands and causes; it
// sorts them together, by node ID.
type nodeDowns struct {
	nodes  []*api.Node
	cmds   []raftstore.Command
	causes []string
}

func (b *nodeDowns) add(n *api.Node, cmd raftstore.Command, cause string) {
	b.nodes, b.cmds, b.causes = append(b.nodes, n), append(b.cmds, cmd), append(b.causes, cause)
}

func (b nodeDowns) Len() int           { return len(b.nodes) }
func (b nodeDowns) Less(i, j int) bool { return b.nodes[i].ID < b.nodes[j].ID }
func (b nodeDowns) Swap(i, j int) {
	b.nodes[i], b.nodes[j] = b.nodes[j], b.nodes[i]
	b.cmds[i], b.cmds[j] = b.cmds[j], b.cmds[i]
	b.causes[i], b.causes[j] = b.causes[j], b.causes[i]
}

func nodeIDs(nodes []*api.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}
