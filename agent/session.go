package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

const (
	// Reconnect delays: the first retries are short enough that a session
	// comes back well within the dispatcher's grace period after a leader
	// change; the delay doubles with each attempt that fails, so that a
	// thousand agents failing together do not retry in lockstep every
	// 200 ms against a manager that is already behind.
	reconnectMin = 20 * time.Millisecond
	reconnectMax = 2 * time.Second
	// establishTimeout bounds opening a session: the stream, the hello and
	// the manager's first answer (which follows a Raft commit). A manager
	// on a cut link never answers; the agent must move on. It doubles with
	// each attempt in a row that timed out, up to maxEstablishTimeout: a
	// fixed bound shorter than what a loaded manager needs makes every
	// agent give up (and throw its TLS handshake away) just before it would
	// have been served, and then queue up again.
	establishTimeout    = 2 * time.Second
	maxEstablishTimeout = 16 * time.Second
	// handshakeTimeout bounds one connection attempt (TCP and the TLS
	// handshake) below gRPC. It is longer than an establish timeout on
	// purpose: a session attempt that gives up leaves its connection
	// connecting, and the next attempt finds it done. A bound as short
	// as the first establish timeout made every handshake that a loaded
	// manager needed more than 2 s for fail and start again from nothing,
	// so that under load no handshake ever finished.
	handshakeTimeout = 20 * time.Second
	// silentBeats is how many heartbeat intervals may pass without a word
	// from the manager before the agent gives up on the session: the
	// leader answers every heartbeat, so with the default interval (300 ms)
	// a dead or cut-off leader is noticed within 900 ms. The count is of
	// heartbeats the agent sent, not of wall time alone: an agent that was
	// itself starved of CPU (and so sent nothing, or could not read what
	// arrived) does not blame the manager for its own stall.
	silentBeats = 3
	// silentBackstop is how many receive deadlines of wall time end a
	// session whatever was sent: a send stuck on a dead connection stops
	// the heartbeats that the count above needs.
	silentBackstop = 4
)

var (
	errRedirected = errors.New("redirected to the leader")
	errProtocol   = errors.New("dispatcher protocol error")
	// errSilent: the manager said nothing for the receive deadline.
	errSilent = errors.New("manager went silent")
	// errStopping: the agent stops.
	errStopping = errors.New("agent stopping")
)

// sessionResult is how one session attempt ended.
type sessionResult struct {
	established bool   // a full assignment set arrived
	redirect    string // leader address from a Redirect ("" if none)
	redirected  bool
}

// runSessions keeps one session open with the leader, moving to whichever
// manager leads now when the session ends. Running tasks are untouched.
// When ctx ends during a session, the session first gives the leader the
// agent's restart notice (if the agent is configured to).
func (a *Agent) runSessions(ctx context.Context, conns *connCache) error {
	defer close(a.sessionsDone)
	// Each agent starts at its own place in the manager list: a thousand
	// agents that lost their leader together then spread over the
	// survivors (one of which will lead) instead of all opening a
	// connection to the same one.
	f := &leaderFinder{a: a, failed: make(map[string]time.Time), delay: reconnectMin, next: rand.IntN(1 << 16)}
	for ctx.Err() == nil {
		addr := f.pick(time.Now())
		a.log.Debug("opening a session", "manager", addr, "timeout", f.establishTimeout())
		res, err := a.session(ctx, conns, addr, f.establishTimeout())
		if res.established {
			a.cfg.Metrics.sessionDown()
		}
		if ctx.Err() != nil {
			return nil
		}
		if res.redirected {
			a.log.Debug("redirected", "manager", addr, "leader", res.redirect)
		} else {
			a.log.Info("session ended", "manager", addr, "err", err)
		}
		if unreachable(err) && !errors.Is(err, errSilent) && !conns.connecting(addr) && !f.firstTimeout(addr, res, err) {
			// A connection to a vanished manager may look healthy for a
			// long time: open a new one next time. One that is still
			// connecting is kept: gRPC retries it on its own, and
			// dropping it would throw away a TLS handshake in progress
			// (under load, the one that was about to succeed). So is one
			// whose manager merely went silent: most often it is a
			// loaded leader that answers again, and a thousand agents
			// each opening a new connection (a new TLS handshake) to it
			// load it further. If the connection is dead, the next
			// attempt over it times out and it is dropped then. So is
			// one whose manager was only slow to open a session once.
			conns.drop(addr)
		}
		if !sleepCtx(ctx, f.after(addr, res, err, time.Now())) {
			return nil
		}
	}
	return nil
}

// leaderFinder chooses the manager to try next. During an election the
// followers still name the old leader for a while; a manager that just
// failed to answer is passed over (for failedFor) so that the agent does
// not follow such redirects into a dead manager again and again.
type leaderFinder struct {
	a         *Agent
	next      int
	failed    map[string]time.Time
	delay     time.Duration
	redirects int
	// timeouts counts the attempts in a row that timed out while opening a
	// session; it sets the next attempt's establish timeout.
	timeouts int
	// timedOut is the manager whose last attempt timed out while opening
	// a session ("" after one was established).
	timedOut string
}

// firstTimeout reports whether an attempt at addr that ended with err
// timed out while opening the session, and the one before at addr did not.
// A manager that is slow once is most often a new leader that a thousand
// agents reached at the same moment: the agent asks another manager for
// the leader (without passing addr over, so that a redirect back to it is
// followed) and keeps its connection, and comes back with a longer
// timeout. Only a second timeout in a row passes addr over, as a manager
// behind a cut link must be.
func (f *leaderFinder) firstTimeout(addr string, res sessionResult, err error) bool {
	return !res.established && status.Code(err) == codes.DeadlineExceeded && f.timedOut != addr
}

// establishTimeout is the bound of the next attempt to open a session.
func (f *leaderFinder) establishTimeout() time.Duration {
	return min(establishTimeout<<min(f.timeouts, 8), maxEstablishTimeout)
}

// failedFor is how long a manager that did not answer is passed over
// (unless every manager failed lately). It outlasts an election, so that
// the old leader is not tried again while followers still name it.
const failedFor = 3 * time.Second

func (f *leaderFinder) recentlyFailed(addr string, now time.Time) bool {
	at, ok := f.failed[addr]
	return ok && now.Sub(at) < failedFor
}

// pick returns the leader as last heard, else the next candidate that did
// not fail lately (any, if all did).
func (f *leaderFinder) pick(now time.Time) string {
	if l := f.a.leaderHint(); l != "" && !f.recentlyFailed(l, now) {
		return l
	}
	c := f.a.candidates()
	for i := range c {
		if addr := c[(f.next+i)%len(c)]; !f.recentlyFailed(addr, now) {
			f.next += i + 1
			return addr
		}
	}
	addr := c[f.next%len(c)]
	f.next++
	return addr
}

// after notes how an attempt at addr ended and returns how long to wait
// before the next one: nothing to follow a fresh redirect, else a jittered
// backoff that grows from reconnectMin to reconnectMax and restarts after a
// session was established.
func (f *leaderFinder) after(addr string, res sessionResult, err error, now time.Time) time.Duration {
	first := f.firstTimeout(addr, res, err)
	if res.established {
		f.delay, f.redirects, f.timeouts, f.timedOut = reconnectMin, 0, 0, ""
	}
	if !res.established && status.Code(err) == codes.DeadlineExceeded {
		f.timeouts++
		f.timedOut = addr
	}
	switch {
	case res.redirected:
		hint := res.redirect
		if hint != "" && hint != addr && !f.recentlyFailed(hint, now) && f.redirects < 3 {
			f.redirects++
			f.a.setLeader(hint)
			return 0
		}
	case unreachable(err) && !first:
		f.failed[addr] = now
	}
	f.a.setLeader("")
	d := jitter(f.delay)
	f.delay = min(2*f.delay, reconnectMax)
	return d
}

// unreachable reports whether a session failed because the manager could
// not be reached or did not answer (rather than ending the session).
func unreachable(err error) bool {
	if errors.Is(err, errSilent) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return false
}

// notePeriod keeps the heartbeat period a leader asked for, for the
// sessions to come.
func (a *Agent) notePeriod(p time.Duration) { a.pacedPeriod.Store(int64(p)) }

// sessionPeriod is the heartbeat period a new session starts at: the one a
// leader asked for last.
func (a *Agent) sessionPeriod() time.Duration {
	return a.heartbeatPeriod(time.Duration(a.pacedPeriod.Load()))
}

// session runs one session with the manager at addr until it ends.
func (a *Agent) session(ctx context.Context, conns *connCache, addr string, timeout time.Duration) (sessionResult, error) {
	var res sessionResult
	conn, err := conns.get(addr)
	if err != nil {
		return res, err
	}
	// The stream may outlive ctx by the restart notice: a stop must reach
	// the leader before the stream closes.
	sctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	var established atomic.Bool
	stopWatch := context.AfterFunc(ctx, func() {
		if !established.Load() || !a.announcesRestart() {
			cancel(errStopping)
		}
	})
	defer stopWatch()
	stream, set, err := a.establish(sctx, cancel, conn, addr, timeout, &res)
	if err != nil {
		return res, err
	}
	established.Store(true)
	if !a.cfg.NoConnectAhead {
		conns.warm(ctx, a.otherManagers(addr), warmSpread, warmPrune, a.log)
	}
	return res, a.converse(ctx, sctx, cancel, stream, addr, set, &res)
}

// establish opens the stream, says hello and takes the full assignment
// set, all within timeout.
func (a *Agent) establish(sctx context.Context, cancel context.CancelCauseFunc, conn *grpc.ClientConn, addr string,
	timeout time.Duration, res *sessionResult) (shoalpb.Dispatcher_SessionClient, *assignmentSet, error) {
	timer := time.AfterFunc(timeout, func() {
		cancel(status.Errorf(codes.DeadlineExceeded, "%s did not open the session within %s", addr, timeout))
	})
	defer timer.Stop()
	stream, err := shoalpb.NewDispatcherClient(conn).Session(sctx)
	if err != nil {
		return nil, nil, fmt.Errorf("open session with %s: %w", addr, causeOr(sctx, err))
	}
	hello := &shoalpb.Hello{Node: shoalpb.FromNode(a.node()), RunningTaskIds: a.w.taskIDs(), AgentAddr: a.addr}
	if err := stream.Send(&shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Hello{Hello: hello}}); err != nil {
		return nil, nil, fmt.Errorf("hello to %s: %w", addr, causeOr(sctx, err))
	}
	// The leader may first answer with a heartbeat (it has the hello and
	// is working on it), and the network view of the same wake-up comes
	// before the assignments. Each word restarts the timeout: a manager
	// that a thousand agents reach at once (a new leader) is slow, not
	// gone, and an agent that gave up on it would only queue again.
	first, err := stream.Recv()
	for err == nil && (first.GetNetworkView() != nil || first.GetHeartbeat() != nil) {
		timer.Reset(timeout)
		if v := first.GetNetworkView(); v != nil {
			a.setNetworkView(v)
		}
		if p := first.GetHeartbeat().GetPeriod(); p != nil {
			a.notePeriod(p.AsDuration())
		}
		first, err = stream.Recv()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("session with %s: %w", addr, causeOr(sctx, err))
	}
	if r := first.GetRedirect(); r != nil {
		res.redirected, res.redirect = true, r.GetLeaderAddr()
		return nil, nil, errRedirected
	}
	full := first.GetAssignments()
	if full == nil || !full.GetFull() {
		return nil, nil, fmt.Errorf("%w: %s opened the session without a full assignment set", errProtocol, addr)
	}
	set := newAssignmentSet()
	a.applyAssignments(set, full)
	res.established = true
	a.cfg.Metrics.sessionUp(a.established.Add(1) == 1)
	a.setLeader(addr)
	a.log.Info("session established", "manager", addr, "tasks", len(full.GetUpsert()))
	return stream, set, nil
}

// causeOr returns why ctx ended, if it did, else err.
func causeOr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return err
}

// converse runs an established session: statuses and heartbeats out,
// assignments and heartbeat answers in, until the session ends or the
// manager goes silent for the receive deadline. When ctx ends first it
// gives the restart notice (if the agent is configured to).
func (a *Agent) converse(ctx, sctx context.Context, cancel context.CancelCauseFunc, stream shoalpb.Dispatcher_SessionClient,
	addr string, set *assignmentSet, res *sessionResult) error {
	select {
	case a.rejoin <- struct{}{}:
	default:
	}
	// The leader may have missed statuses sent on an earlier session.
	a.w.takeOutbox()
	if err := sendStatuses(stream, a.w.statuses()); err != nil {
		return fmt.Errorf("session with %s: %w", addr, err)
	}
	period := a.sessionPeriod()
	watchdog := newSilence(silentBeats*period, func(silentFor time.Duration) {
		cancel(fmt.Errorf("%w: nothing from %s for %s (%d heartbeat intervals)", errSilent, addr,
			silentFor.Round(time.Millisecond), silentBeats))
	})
	defer watchdog.stop()
	in := &inbound{
		set: set, resync: make(chan struct{}, 1), acks: make(chan *shoalpb.RestartAck, 1), res: res,
		silence: watchdog, periods: make(chan time.Duration, 1), period: period, probes: make(chan struct{}, 1),
	}
	var recvErr error
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		recvErr = a.receive(stream, in)
	}()
	sendErr := a.pump(ctx, sctx, stream, in, recvDone)
	cause := context.Cause(sctx)
	cancel(errStopping)
	<-recvDone
	switch {
	case errors.Is(cause, errSilent):
		return cause
	case sendErr != nil:
		return fmt.Errorf("session with %s: %w", addr, sendErr)
	}
	return fmt.Errorf("session with %s: %w", addr, recvErr)
}

// inbound is what the receiver shares with the rest of a session.
type inbound struct {
	set    *assignmentSet
	resync chan struct{}
	acks   chan *shoalpb.RestartAck
	res    *sessionResult
	// silence hears the manager's messages and counts the heartbeats.
	silence *silence
	// periods carries the heartbeat period the leader asks for to the
	// sender (the latest one only).
	periods chan time.Duration
	// period is the one the session started at.
	period time.Duration
	// probes asks the sender for a heartbeat now: the leader probed.
	probes chan struct{}
}

// pace passes a new heartbeat period to the sender, replacing one it has
// not taken yet.
func (in *inbound) pace(p time.Duration) {
	for {
		select {
		case in.periods <- p:
			return
		default:
		}
		select {
		case <-in.periods:
		default:
		}
	}
}

// maxHeartbeatPeriod bounds the period the agent follows: a leader that
// asked for more would have the agent notice its silence that much later
// (a killed leader's connection closes at once).
const maxHeartbeatPeriod = 30 * time.Second

// heartbeatPeriod is the interval the agent keeps when the leader asks for
// period: the longer of the two, within maxHeartbeatPeriod.
func (a *Agent) heartbeatPeriod(period time.Duration) time.Duration {
	return min(max(period, a.cfg.HeartbeatInterval), maxHeartbeatPeriod)
}

// applyAssignments applies one Assignments message to the set and the
// worker, and reports whether the set needs a resync.
func (a *Agent) applyAssignments(set *assignmentSet, m *shoalpb.Assignments) (resync bool) {
	// The secrets come first: a runner may start as soon as it is told.
	a.w.vault.put(m)
	ch, err := set.apply(m)
	defer a.w.vault.keep(set.tasks)
	if errors.Is(err, errResync) {
		a.log.Warn("assignments out of order, asking for a full set", "err", err)
		return true
	}
	if err != nil {
		a.log.Error("skipped assigned tasks the agent cannot read", "err", err)
	}
	a.w.apply(ch)
	return false
}

// receive applies what the manager sends until the stream ends.
func (a *Agent) receive(stream shoalpb.Dispatcher_SessionClient, in *inbound) error {
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		in.silence.heard()
		switch msg := m.GetMsg().(type) {
		case *shoalpb.ManagerMessage_Redirect:
			in.res.redirected, in.res.redirect = true, msg.Redirect.GetLeaderAddr()
			return errRedirected
		case *shoalpb.ManagerMessage_Assignments:
			if a.applyAssignments(in.set, msg.Assignments) {
				select {
				case in.resync <- struct{}{}:
				default:
				}
			}
		case *shoalpb.ManagerMessage_NetworkView:
			a.setNetworkView(msg.NetworkView)
		case *shoalpb.ManagerMessage_Heartbeat:
			if p := msg.Heartbeat.GetPeriod(); p != nil {
				a.notePeriod(p.AsDuration())
				in.pace(a.heartbeatPeriod(p.AsDuration()))
			}
			if msg.Heartbeat.GetProbe() {
				select {
				case in.probes <- struct{}{}:
				default:
				}
			}
		case *shoalpb.ManagerMessage_RestartAck:
			select {
			case in.acks <- msg.RestartAck:
			default:
			}
		case *shoalpb.ManagerMessage_GossipKeys:
			if a.keys.set(msg.GossipKeys) {
				a.log.Info("gossip keys received", "keys_version", msg.GossipKeys.GetVersion())
			}
		case *shoalpb.ManagerMessage_StatusRejected:
			for _, r := range msg.StatusRejected.GetUpdates() {
				a.log.Error("the leader refused a status report; it is not sent again", "task_id", r.GetTaskId(), "reason", r.GetReason())
			}
		}
	}
}

// pump sends statuses (batched), resync requests and heartbeats until the
// session ends, and the restart notice if ctx ends first.
func (a *Agent) pump(ctx, sctx context.Context, stream shoalpb.Dispatcher_SessionClient, in *inbound, recvDone <-chan struct{}) error {
	period := in.period
	hb := time.NewTicker(period)
	defer hb.Stop()
	for {
		var msg *shoalpb.AgentMessage
		select {
		case p := <-in.periods:
			if p != period {
				period = p
				hb.Reset(p)
				in.silence.setDeadline(silentBeats * p)
				a.log.Debug("heartbeat period set by the leader", "period", p)
			}
			continue
		case <-sctx.Done():
			return nil
		case <-recvDone:
			return nil
		case <-ctx.Done():
			a.announceRestart(sctx, stream, in.acks)
			return nil
		case <-in.resync:
			msg = &shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Resync{Resync: &shoalpb.ResyncRequest{}}}
		case <-hb.C:
			in.silence.sent()
			msg = &shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Heartbeat{Heartbeat: &shoalpb.Heartbeat{}}}
		case <-in.probes:
			// Not counted as sent: the probe itself was a word from the
			// manager, and the count is of the agent's own beats.
			msg = &shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Heartbeat{Heartbeat: &shoalpb.Heartbeat{}}}
		case <-a.w.outKick:
			if !sleepCtx(sctx, a.cfg.StatusDelay) {
				return nil
			}
			if err := sendStatuses(stream, a.w.takeOutbox()); err != nil {
				return err
			}
			continue
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
}

func sendStatuses(stream shoalpb.Dispatcher_SessionClient, ups []statusUpdate) error {
	if len(ups) == 0 {
		return nil
	}
	batch := &shoalpb.StatusBatch{Updates: make([]*shoalpb.TaskStatusUpdate, len(ups))}
	for i, u := range ups {
		batch.Updates[i] = &shoalpb.TaskStatusUpdate{TaskId: u.TaskID, Status: shoalpb.FromTaskStatus(u.Status)}
	}
	return stream.Send(&shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Status{Status: batch}})
}

// sleepCtx waits d; it reports false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// jitter spreads d over [d/2, d) so that agents reconnecting after the same
// leader change do not arrive in step.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}
