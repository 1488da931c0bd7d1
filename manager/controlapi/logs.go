package controlapi

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// agentDialTimeout bounds connecting to one node's agent. A node that
// does not answer in time gets one error line; the other nodes' lines flow
// on.
const agentDialTimeout = 3 * time.Second

// ServiceLogs streams the log lines of a service's tasks, fetched from the
// agents of the nodes they ran on.
//
// Any manager answers from its own state instead of forwarding to the
// leader: the call writes nothing, the lines come from the agents whoever
// asks them, and a follower's state lags the leader's by milliseconds,
// which at worst misses a task that started in that moment (with follow
// it is picked up at the next change). Forwarding would add a hop to every
// line of a followed stream for no gain.
func (s *Server) ServiceLogs(req *shoalpb.ServiceLogsRequest, stream grpc.ServerStreamingServer[shoalpb.LogLine]) error {
	if err := errors.Join(api.ValidateRef("service", req.GetService(), true), api.ValidateLogTail(req.GetTail())); err != nil {
		return toStatus(err)
	}
	// Take the change signal before reading, so that no change between the
	// read and the wait below goes unseen.
	changed := s.state().Changed()
	v := s.state().Read()
	serviceID, onlyTask, err := logTarget(v, req.GetService())
	if err != nil {
		return toStatus(err)
	}
	ls := &logSession{
		s: s, req: req, serviceID: serviceID, onlyTask: onlyTask, stream: stream,
		started: map[string]bool{}, nodes: map[string]*agentLink{},
	}
	defer ls.close()
	ctx := stream.Context()
	ls.startTasks(ctx, v)
	if !req.GetFollow() {
		ls.wg.Wait()
		return ls.err()
	}
	for {
		select {
		case <-ctx.Done():
			ls.wg.Wait()
			return toStatus(ctx.Err())
		case <-changed:
			changed = s.state().Changed()
			ls.startTasks(ctx, s.state().Read())
		}
	}
}

// logSession is one ServiceLogs call: a stream per task, over one
// connection per node.
type logSession struct {
	s         *Server
	req       *shoalpb.ServiceLogsRequest
	serviceID string
	// onlyTask, when set, is the one task whose logs are asked for.
	onlyTask string
	wg       sync.WaitGroup

	// started and nodes belong to the call's own goroutine.
	started map[string]bool // task ids whose logs are being fetched
	nodes   map[string]*agentLink

	mu     sync.Mutex // serialises sends
	stream grpc.ServerStreamingServer[shoalpb.LogLine]
	failed error // the first failed send: the client is gone
}

// startTasks starts fetching the logs of the service's tasks in v that
// have reached a node and were not started yet, in slot order.
func (ls *logSession) startTasks(ctx context.Context, v *raftstore.View) {
	tasks := slices.DeleteFunc(v.TasksByService(ls.serviceID), func(t *api.Task) bool {
		return ls.started[t.ID] || !mayHaveContainer(t) || (ls.onlyTask != "" && t.ID != ls.onlyTask)
	})
	slices.SortFunc(tasks, func(a, b *api.Task) int {
		return cmp.Or(cmp.Compare(a.Slot, b.Slot), cmp.Compare(a.NodeID, b.NodeID), a.CreatedAt.Compare(b.CreatedAt))
	})
	for _, t := range tasks {
		ls.started[t.ID] = true
		link := ls.link(ctx, v, t.NodeID)
		ls.wg.Add(1)
		go func() {
			defer ls.wg.Done()
			ls.streamTask(ctx, link, t)
		}()
	}
}

// mayHaveContainer reports whether an agent may hold a container (and so
// logs) for t: it reached a node and the agent got as far as starting it.
func mayHaveContainer(t *api.Task) bool {
	return t.NodeID != "" && t.Status.State >= api.TaskStarting
}

// link returns the connection to a node's agent, starting it on first use.
func (ls *logSession) link(ctx context.Context, v *raftstore.View, nodeID string) *agentLink {
	if l, ok := ls.nodes[nodeID]; ok {
		return l
	}
	l := &agentLink{nodeID: nodeID, ready: make(chan struct{})}
	ls.nodes[nodeID] = l
	n := v.Node(nodeID)
	if n != nil {
		l.hostname = n.Hostname
	}
	ls.wg.Add(1)
	go func() {
		defer ls.wg.Done()
		defer close(l.ready)
		if l.err = l.connect(ctx, n, ls.s.agentTLS); l.err != nil && !callOver(ctx) {
			ls.s.log.Debug("agent unreachable for logs", "node_id", nodeID, "err", l.err)
			ls.sendError(nodeID, "", 0, fmt.Sprintf("node %s: %v; the logs of its tasks are missing", l.name(), l.err))
		}
	}()
	return l
}

// streamTask relays the lines of one task from its node's agent. With
// follow, a task whose container is not there yet is asked again as its
// state changes, until it runs or ends.
func (ls *logSession) streamTask(ctx context.Context, l *agentLink, t *api.Task) {
	select {
	case <-ctx.Done():
		return
	case <-l.ready:
	}
	if l.err != nil {
		return // reported once for the node
	}
	for {
		changed := ls.s.state().Changed()
		err := ls.relay(ctx, l, t)
		if errors.Is(err, io.EOF) || callOver(ctx) {
			return
		}
		if status.Code(err) != codes.NotFound {
			ls.sendError(t.NodeID, t.ID, t.Slot, fmt.Sprintf("task %s on node %s: %s", t.ID, l.name(), status.Convert(err).Message()))
			return
		}
		cur := ls.s.state().Read().Task(t.ID)
		switch {
		case cur != nil && cur.Status.State == api.TaskRunning && cur.DesiredState == api.TaskRunning:
			ls.sendError(t.NodeID, t.ID, t.Slot, fmt.Sprintf("task %s runs on node %s but its agent has no container for it: %s",
				t.ID, l.name(), status.Convert(err).Message()))
			return
		case !ls.req.GetFollow() || cur == nil || cur.Status.State.Terminal() || cur.DesiredState > api.TaskRunning:
			// The task ended and its agent removed the container, or it
			// never got one: it has no logs, which is no error.
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retryInterval):
		}
	}
}

// callOver reports whether the client's call is over: cancelled, or past
// its deadline even if ctx's timer has not fired yet. The agent's stream
// carries the same deadline and can be reset by it a moment before ours
// fires; that reset is the end of a followed stream, not missing logs.
func callOver(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// relay copies the task's lines from its agent to the client until the
// agent's stream ends (io.EOF) or fails.
func (ls *logSession) relay(ctx context.Context, l *agentLink, t *api.Task) error {
	stream, err := shoalpb.NewAgentClient(l.conn).TaskLogs(ctx, &shoalpb.TaskLogsRequest{
		TaskIds: []string{t.ID}, Follow: ls.req.GetFollow(), Tail: ls.req.GetTail(),
	})
	for err == nil {
		var line *shoalpb.LogLine
		if line, err = stream.Recv(); err == nil {
			// The manager's record names the task, whatever the agent knew.
			line.TaskId, line.NodeId, line.Slot = t.ID, t.NodeID, t.Slot
			if ls.tooOld(line) {
				continue
			}
			err = ls.send(line)
		}
	}
	return err
}

// err is the error that ended sending, if any.
func (ls *logSession) err() error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.failed
}

func (ls *logSession) send(l *shoalpb.LogLine) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.failed != nil {
		return ls.failed
	}
	if err := ls.stream.Send(l); err != nil {
		ls.failed = err
		return err
	}
	return nil
}

// sendError tells the client, in the stream, which logs are missing.
func (ls *logSession) sendError(nodeID, taskID string, slot uint64, msg string) {
	// A failed send ends the call: it is returned from there.
	_ = ls.send(&shoalpb.LogLine{
		TaskId: taskID, NodeId: nodeID, Slot: slot, Stream: shoalpb.LogStreamError,
		Line: []byte(msg), Time: timestamppb.New(now()),
	})
}

// close releases the connections to the agents once every stream ended.
func (ls *logSession) close() {
	ls.wg.Wait()
	for _, l := range ls.nodes {
		if l.conn != nil {
			l.conn.Close() // nothing was written through it that a close error could lose
		}
	}
}

// agentLink is the connection to one node's agent for one call. ready is
// closed once conn is up or err says why not.
type agentLink struct {
	nodeID, hostname string
	ready            chan struct{}
	conn             *grpc.ClientConn
	err              error

	mu      sync.Mutex
	dialErr error // the last failed dial, for the message
}

func (l *agentLink) name() string {
	if l.hostname == "" {
		return l.nodeID
	}
	return fmt.Sprintf("%s (%s)", l.nodeID, l.hostname)
}

// connect dials the agent and waits until the connection is up, for at
// most agentDialTimeout.
func (l *agentLink) connect(ctx context.Context, n *api.Node, tlsCfg *tls.Config) error {
	switch {
	case n == nil:
		return errors.New("not in the cluster any more")
	case n.Addr == "":
		return errors.New("its agent has not told its address (it never connected to this cluster's dispatcher)")
	}
	dialer := &net.Dialer{Timeout: agentDialTimeout}
	conn, err := grpc.NewClient(n.Addr, append(authz.DialOptions(tlsCfg),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, "tcp", addr)
			if err != nil {
				l.mu.Lock()
				l.dialErr = err
				l.mu.Unlock()
			}
			return c, err
		}))...)
	if err != nil {
		return fmt.Errorf("agent address %q: %w", n.Addr, err)
	}
	l.conn = conn
	ctx, cancel := context.WithTimeout(ctx, agentDialTimeout)
	defer cancel()
	conn.Connect()
	for {
		st := conn.GetState()
		switch st {
		case connectivity.Ready:
			return nil
		case connectivity.TransientFailure, connectivity.Shutdown:
			return fmt.Errorf("cannot reach its agent at %s: %w", n.Addr, l.lastDialErr())
		}
		if !conn.WaitForStateChange(ctx, st) {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("its agent at %s did not answer within %s", n.Addr, agentDialTimeout)
			}
			return ctx.Err()
		}
	}
}

func (l *agentLink) lastDialErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dialErr == nil {
		return errors.New("connection failed")
	}
	return l.dialErr
}
