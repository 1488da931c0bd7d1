package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

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
	seen      atomic.Int64 // unix nanos of the last message from the agent
}

func (s *session) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *session) end(cause error)          { s.cancel(cause) }
func (s *session) touch()                   { s.seen.Store(s.d.now().UnixNano()) }
func (s *session) lastSeen() time.Time      { return time.Unix(0, s.seen.Load()) }
func (s *session) silentFor() time.Duration { return s.d.now().Sub(s.lastSeen()) }

// Session serves one agent: hello, then assignments out and statuses in.
func (d *Dispatcher) Session(stream shoalpb.Dispatcher_SessionServer) error {
	if !d.cfg.IsLeader() {
		return d.redirect(stream)
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
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	s := &session{
		d: d, nodeID: node.ID, agentAddr: hello.GetAgentAddr(), stream: stream, cancel: cancel,
		wake: make(chan struct{}, 1), resync: make(chan struct{}, 1),
	}
	s.touch()
	d.attach(s)
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
	n.CreatedAt, n.UpdatedAt = now, now
	n.Availability, n.Version = "", 0
	return n, nil
}

// register commits the node (with status ready).
func (d *Dispatcher) register(ctx context.Context, n *api.Node) error {
	return d.applyAll(ctx, raftstore.UpsertNode{Node: n})
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
		case *shoalpb.AgentMessage_Status:
			ups, err := statusUpdates(msg.Status)
			if err != nil {
				s.end(status.Error(codes.InvalidArgument, err.Error()))
				return
			}
			s.d.queueStatuses(s.nodeID, ups)
		case *shoalpb.AgentMessage_Resync:
			select {
			case s.resync <- struct{}{}:
			default:
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

// statusUpdates converts a batch, refusing states an agent cannot report.
func statusUpdates(b *shoalpb.StatusBatch) ([]raftstore.TaskStatusUpdate, error) {
	out := make([]raftstore.TaskStatusUpdate, 0, len(b.GetUpdates()))
	for _, u := range b.GetUpdates() {
		if u.GetTaskId() == "" {
			return nil, errors.New("status.updates holds an update with an empty task_id")
		}
		st, err := shoalpb.ToTaskStatus(u.GetStatus())
		if err != nil {
			return nil, fmt.Errorf("status of task %s: %w", u.GetTaskId(), err)
		}
		if !agentState(st.State) {
			return nil, fmt.Errorf("status.state %q of task %s: an agent reports only accepted, preparing, starting, running, complete, shutdown, failed or rejected",
				st.State, u.GetTaskId())
		}
		out = append(out, raftstore.TaskStatusUpdate{TaskID: u.GetTaskId(), Status: st})
	}
	return out, nil
}

func agentState(s api.TaskState) bool {
	return s >= api.TaskAccepted && s <= api.TaskRejected
}

// fingerprint is what of a task the agent acts on: a change of it is sent.
// Status changes are the agent's own reports and are not echoed back.
type fingerprint struct {
	desired     api.TaskState
	specVersion uint64
}

// inSet reports whether the node's agent must know task t: it was placed
// there, was not orphaned, and is not a stopped task that is no longer
// wanted (that one leaves the set, which tells the agent to remove it).
func inSet(t *api.Task) bool {
	st := t.Status.State
	switch {
	case st < api.TaskAssigned, st == api.TaskOrphaned:
		return false
	case t.DesiredState > api.TaskRunning && st.Terminal():
		return false
	}
	return true
}

// send streams the assignment set: a full set first (and on a resync
// request), then the changes, each time a task of the node changes.
func (s *session) send(ctx context.Context, running []string) error {
	sent := make(map[string]fingerprint)
	var seq uint64
	full := true
	for {
		msg := s.diff(sent, full, running)
		if msg != nil {
			seq++
			msg.Sequence = seq
			if err := s.stream.Send(&shoalpb.ManagerMessage{Msg: &shoalpb.ManagerMessage_Assignments{Assignments: msg}}); err != nil {
				return err
			}
		}
		full, running = false, nil
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-s.resync:
			full = true
		}
	}
}

// diff computes the message that brings the agent from sent to the node's
// current set (nil when nothing changed), and updates sent.
func (s *session) diff(sent map[string]fingerprint, full bool, running []string) *shoalpb.Assignments {
	v := s.d.cfg.State.Read()
	tasks := v.TasksByNode(s.nodeID)
	msg := &shoalpb.Assignments{Full: full}
	cur := make(map[string]bool, len(tasks))
	for _, t := range tasks {
		if !inSet(t) {
			continue
		}
		cur[t.ID] = true
		fp := fingerprint{desired: t.DesiredState, specVersion: t.SpecVersion}
		if old, ok := sent[t.ID]; full || !ok || old != fp {
			msg.Upsert = append(msg.Upsert, shoalpb.FromTaskWithSpec(t, v.ServiceSpec(t.ServiceID, t.SpecVersion)))
			sent[t.ID] = fp
		}
	}
	for id := range sent {
		if !cur[id] {
			delete(sent, id)
			if !full {
				msg.Remove = append(msg.Remove, id)
			}
		}
	}
	if full {
		// Name the agent's leftovers explicitly; a full set implies it.
		for _, id := range running {
			if !cur[id] {
				msg.Remove = append(msg.Remove, id)
			}
		}
		sort.Strings(msg.Remove)
		return msg
	}
	if len(msg.Upsert) == 0 && len(msg.Remove) == 0 {
		return nil
	}
	sort.Strings(msg.Remove)
	return msg
}
