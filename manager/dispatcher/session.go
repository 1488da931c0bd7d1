package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// noticeBuffer is how many messages other than assignments (heartbeat
// answers, acks, refusals) may wait for a session's sender. A sender that
// is this far behind is stuck on a dead connection, which the agent's
// receive deadline and the session TTL end; what does not fit is dropped.
const noticeBuffer = 64

// session is one agent's open stream.
type session struct {
	d      *Dispatcher
	nodeID string
	// agentAddr is the Agent service address the agent gave: it tells
	// gossip events about this incarnation from those about an earlier one.
	agentAddr string
	id        uint64
	stream    shoalpb.Dispatcher_SessionServer
	cancel    context.CancelCauseFunc
	wake      chan struct{}
	resync    chan struct{}
	// notices are sent by the sender between assignment messages: a
	// stream has one sender.
	notices    chan *shoalpb.ManagerMessage
	seen       atomic.Int64 // unix nanos of the last message from the agent
	restarting atomic.Bool  // a restart notice is being committed (one at a time)
}

func (s *session) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// tell queues a notice for the agent; it never blocks.
func (s *session) tell(m *shoalpb.ManagerMessage) {
	select {
	case s.notices <- m:
	default:
		s.d.log.Warn("session's sender is behind; dropping a notice", "node_id", s.nodeID)
	}
}

// excuse moves the session's last word forward by d (never past now):
// this manager could not listen for that long.
func (s *session) excuse(d time.Duration, now time.Time) {
	for {
		old := s.seen.Load()
		moved := min(old+int64(d), now.UnixNano())
		if moved <= old || s.seen.CompareAndSwap(old, moved) {
			return
		}
	}
}

func (s *session) end(cause error)          { s.cancel(cause) }
func (s *session) touch()                   { s.seen.Store(s.d.now().UnixNano()) }
func (s *session) lastSeen() time.Time      { return time.Unix(0, s.seen.Load()) }
func (s *session) silentFor() time.Duration { return s.d.now().Sub(s.lastSeen()) }

// Session serves one agent: hello, then assignments out and statuses in.
func (d *Dispatcher) Session(stream shoalpb.Dispatcher_SessionServer) error {
	if !d.cfg.IsLeader() {
		d.leaders.wait(stream.Context(), func() error { return stream.Send(d.pace.heartbeat()) })
		if !d.cfg.IsLeader() {
			return d.redirect(stream)
		}
	}
	// A heartbeat answer first, with the period to beat at: the agent
	// waits for a manager that answers, and a new leader that a thousand
	// agents reached together (many of them held above until it was
	// elected) needs long to read every hello and register every node.
	if err := stream.Send(d.pace.heartbeat()); err != nil {
		return err
	}
	hello, err := recvHello(stream)
	if err != nil {
		return err
	}
	if hello == nil {
		return status.Error(codes.InvalidArgument, "the first message of a session must be hello")
	}
	node, err := nodeFromHello(hello, d.now())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if err := d.identify(stream.Context(), node.ID); err != nil {
		d.log.Warn("session refused", "hello_node_id", node.ID, "err", err)
		return err
	}
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	s := &session{
		d: d, nodeID: node.ID, agentAddr: hello.GetAgentAddr(), stream: stream, cancel: cancel,
		wake: make(chan struct{}, 1), resync: make(chan struct{}, 1), notices: make(chan *shoalpb.ManagerMessage, noticeBuffer),
	}
	s.touch()
	if old := d.sessions.attach(s); old != nil {
		old.end(ErrSuperseded)
	}
	d.cfg.Metrics.sessionOpened()
	defer d.detach(s)

	if err := d.register(ctx, node); err != nil {
		if errors.Is(err, raftstore.ErrNotLeader) {
			return d.redirect(stream)
		}
		return status.Errorf(codes.Unavailable, "register node %s: %v", node.ID, err)
	}
	log := d.log.With("node_id", node.ID, "hostname", node.Hostname)
	log.Info("session opened", "running_tasks", len(hello.GetRunningTaskIds()))
	go s.receive(ctx)
	err = s.send(ctx, hello.GetRunningTaskIds())
	cause := context.Cause(ctx)
	log.Info("session closed", "err", err, "cause", cause)
	if errors.Is(cause, ErrNotLeader) || errors.Is(cause, errStopped) {
		return d.redirect(stream)
	}
	if err != nil {
		return err
	}
	if _, ok := status.FromError(cause); ok {
		return cause
	}
	return status.Error(codes.Aborted, cause.Error())
}

// detach forgets s and, if it was still its node's session, starts the
// node's grace period.
func (d *Dispatcher) detach(s *session) {
	if d.sessions.detach(s) {
		d.live.sessionEnded(s.nodeID, s.lastSeen())
	}
}

// recvHello waits (a bounded time) for the first message of a session.
func recvHello(stream shoalpb.Dispatcher_SessionServer) (*shoalpb.Hello, error) {
	type result struct {
		m   *shoalpb.AgentMessage
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := stream.Recv()
		ch <- result{m, err}
	}()
	t := time.NewTimer(helloTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return r.m.GetHello(), nil
	case <-t.C:
		// Returning ends the stream, which ends the Recv above.
		return nil, status.Errorf(codes.DeadlineExceeded, "no hello within %s of opening the session", helloTimeout)
	}
}

// redirect answers an agent that came to a manager that does not lead.
func (d *Dispatcher) redirect(stream shoalpb.Dispatcher_SessionServer) error {
	return stream.Send(&shoalpb.ManagerMessage{Msg: &shoalpb.ManagerMessage_Redirect{
		Redirect: &shoalpb.Redirect{LeaderAddr: d.cfg.LeaderAddr()},
	}})
}

// nodeFromHello checks what the agent says of its node.
func nodeFromHello(h *shoalpb.Hello, now time.Time) (*api.Node, error) {
	n := shoalpb.ToNode(h.GetNode())
	switch {
	case n == nil:
		return nil, errors.New("hello.node is missing")
	case n.ID == "":
		return nil, errors.New("hello.node.id is empty")
	case n.Hostname == "":
		return nil, fmt.Errorf("hello.node.hostname of node %s is empty", n.ID)
	case n.Resources.NanoCPUs < 0 || n.Resources.MemoryBytes < 0:
		return nil, fmt.Errorf("hello.node.resources of node %s are negative (%d nano CPUs, %d bytes)",
			n.ID, n.Resources.NanoCPUs, n.Resources.MemoryBytes)
	}
	switch n.Role {
	case "":
		n.Role = api.RoleWorker
	case api.RoleWorker, api.RoleManager:
	default:
		return nil, fmt.Errorf("hello.node.role %q of node %s: want worker or manager", n.Role, n.ID)
	}
	if a := h.GetAgentAddr(); a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("hello.agent_addr %q of node %s: want host:port", a, n.ID)
		}
		// The leader reaches the Agent service (task logs) at Node.Addr.
		n.Addr = a
	}
	n.Status, n.StatusMessage = api.NodeReady, "agent connected"
	n.RestartDeadline = time.Time{}
	n.CreatedAt, n.UpdatedAt = now, now
	n.Availability, n.Version = "", 0
	return n, nil
}

// register commits the node (with status ready: an agent that comes back
// from a restart ends its node's hold this way).
// A registration that would change nothing is not committed.
func (d *Dispatcher) register(ctx context.Context, n *api.Node) error {
	if !raftstore.RegistrationChanges(d.cfg.State.Read().Node(n.ID), n) {
		return nil
	}
	return commitOne(ctx, d.cfg.Applier, raftstore.UpsertNode{Node: n})
}

// receive takes the agent's messages until the stream ends.
func (s *session) receive(ctx context.Context) {
	for {
		m, err := s.stream.Recv()
		if err != nil {
			s.end(fmt.Errorf("agent stream: %w", err))
			return
		}
		s.touch()
		switch msg := m.GetMsg().(type) {
		case *shoalpb.AgentMessage_Heartbeat:
			s.d.cfg.Metrics.heartbeat()
			s.tell(s.d.pace.heartbeat())
		case *shoalpb.AgentMessage_Status:
			s.report(msg.Status)
		case *shoalpb.AgentMessage_Resync:
			select {
			case s.resync <- struct{}{}:
			default:
			}
		case *shoalpb.AgentMessage_Restarting:
			if s.restarting.CompareAndSwap(false, true) {
				// The commit must not stop the answers to heartbeats.
				go func() {
					defer s.restarting.Store(false)
					s.tell(s.d.holdRestart(ctx, s, msg.Restarting))
				}()
			}
		case *shoalpb.AgentMessage_Hello:
			s.end(status.Error(codes.InvalidArgument, "hello sent twice in one session"))
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// report queues the acceptable reports of a batch and tells the agent
// which ones were refused, and why.
func (s *session) report(b *shoalpb.StatusBatch) {
	ups, refused := checkReports(b)
	s.d.statuses.queue(s.nodeID, ups)
	if len(refused) == 0 {
		return
	}
	for _, r := range refused {
		s.d.log.Warn("status report refused", "node_id", s.nodeID, "task_id", r.GetTaskId(), "reason", r.GetReason())
	}
	s.tell(&shoalpb.ManagerMessage{Msg: &shoalpb.ManagerMessage_StatusRejected{
		StatusRejected: &shoalpb.StatusRejected{Updates: refused},
	}})
}
