package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// logServer serves the Agent service: the leader fetches task logs here.
type logServer struct {
	shoalpb.UnimplementedAgentServer
	a *Agent
}

// TaskLogs streams the log lines of the given tasks; with follow, until the
// caller goes away.
func (s *logServer) TaskLogs(req *shoalpb.TaskLogsRequest, stream shoalpb.Agent_TaskLogsServer) error {
	if len(req.GetTaskIds()) == 0 {
		return status.Error(codes.InvalidArgument, "task_ids is empty: name at least one task")
	}
	for _, id := range req.GetTaskIds() {
		if id == "" {
			return status.Error(codes.InvalidArgument, "task_ids holds an empty task id")
		}
	}
	opts := LogOptions{Follow: req.GetFollow(), Tail: req.GetTail()}
	w := &lineSender{stream: stream, nodeID: s.a.nodeID}
	ctx := stream.Context()
	if !opts.Follow {
		for _, id := range req.GetTaskIds() {
			if err := s.taskLogs(ctx, id, opts, w); err != nil {
				return err
			}
		}
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, id := range req.GetTaskIds() {
		g.Go(func() error { return s.taskLogs(gctx, id, opts, w) })
	}
	return g.Wait()
}

func (s *logServer) taskLogs(ctx context.Context, id string, opts LogOptions, w *lineSender) error {
	tw := &taskLineWriter{s: w, taskID: id, slot: s.a.w.slot(id)}
	err := s.a.cfg.Runtime.Logs(ctx, id, opts, tw)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return status.Errorf(codes.NotFound, "task %s has no container on node %s", id, s.a.nodeID)
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	}
	return status.Errorf(codes.Internal, "logs of task %s: %v", id, err)
}

// lineSender serialises sends on one stream for several tasks.
type lineSender struct {
	mu     sync.Mutex
	stream shoalpb.Agent_TaskLogsServer
	nodeID string
}

type taskLineWriter struct {
	s      *lineSender
	taskID string
	slot   uint64
}

func (w *taskLineWriter) WriteLine(stream string, at time.Time, line []byte) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.stream.Send(&shoalpb.LogLine{
		TaskId: w.taskID, NodeId: w.s.nodeID, Slot: w.slot, Stream: stream,
		Line: append([]byte(nil), line...), Time: timestamppb.New(at),
	})
}
