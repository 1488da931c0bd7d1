package dispatcher

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// Limits of one status report. A report over them is refused alone.
const (
	// maxTaskIDBytes bounds a reported task ID (shoal's are 25 bytes).
	maxTaskIDBytes = 256
	// maxReportTextBytes bounds the text of one report (message, error,
	// container ID and pending reason together): it goes into a Raft entry.
	maxReportTextBytes = 64 << 10
)

// checkReports splits a batch into the reports the state may take and the
// refused ones, each with the reason. A report that is refused is refused
// alone: the others of its batch, and of every other node's, go on.
func checkReports(b *shoalpb.StatusBatch) ([]raftstore.TaskStatusUpdate, []*shoalpb.RejectedStatus) {
	ok := make([]raftstore.TaskStatusUpdate, 0, len(b.GetUpdates()))
	var refused []*shoalpb.RejectedStatus
	for i, u := range b.GetUpdates() {
		up, err := checkReport(u)
		if err != nil {
			id := u.GetTaskId()
			if len(id) > maxTaskIDBytes {
				id = id[:maxTaskIDBytes]
			}
			refused = append(refused, &shoalpb.RejectedStatus{TaskId: id, Reason: fmt.Sprintf("status.updates[%d]: %v", i, err)})
			continue
		}
		ok = append(ok, up)
	}
	return ok, refused
}

// checkReport converts one report, refusing what an agent cannot say and
// what the state cannot hold (a timestamp JSON cannot encode, text too long).
func checkReport(u *shoalpb.TaskStatusUpdate) (raftstore.TaskStatusUpdate, error) {
	id := u.GetTaskId()
	switch {
	case id == "":
		return raftstore.TaskStatusUpdate{}, errors.New("task_id is empty")
	case len(id) > maxTaskIDBytes:
		return raftstore.TaskStatusUpdate{}, fmt.Errorf("task_id is %d bytes, limit %d", len(id), maxTaskIDBytes)
	case u.GetStatus() == nil:
		return raftstore.TaskStatusUpdate{}, fmt.Errorf("status of task %s is missing", id)
	}
	pb := u.GetStatus()
	if ts := pb.GetTimestamp(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return raftstore.TaskStatusUpdate{}, fmt.Errorf("status.timestamp of task %s: %v: want a time from year 1 to 9999", id, err)
		}
	}
	for i, r := range pb.GetHealthLog() {
		for _, ts := range []*timestamppb.Timestamp{r.GetStart(), r.GetEnd()} {
			if ts == nil {
				continue
			}
			if err := ts.CheckValid(); err != nil {
				return raftstore.TaskStatusUpdate{}, fmt.Errorf("status.health_log[%d] of task %s: %v: want a time from year 1 to 9999", i, id, err)
			}
		}
	}
	st, err := shoalpb.ToTaskStatus(pb)
	if err != nil {
		return raftstore.TaskStatusUpdate{}, fmt.Errorf("status of task %s: %w", id, err)
	}
	if !agentState(st.State) {
		return raftstore.TaskStatusUpdate{}, fmt.Errorf("status.state %q of task %s: an agent reports only accepted, preparing, starting, running, complete, shutdown, failed or rejected",
			st.State, id)
	}
	if n := len(st.Message) + len(st.Err) + len(st.ContainerID) + len(st.PendingReason); n > maxReportTextBytes {
		return raftstore.TaskStatusUpdate{}, fmt.Errorf("status of task %s: message, err, container_id and pending_reason are %d bytes together, limit %d",
			id, n, maxReportTextBytes)
	}
	if err := checkHealthLog(st.HealthLog); err != nil {
		return raftstore.TaskStatusUpdate{}, fmt.Errorf("status.health_log of task %s: %w", id, err)
	}
	return raftstore.TaskStatusUpdate{TaskID: id, Status: st}, nil
}

// checkHealthLog refuses a probe history over the bounds an agent keeps.
func checkHealthLog(log []api.ProbeResult) error {
	if len(log) > api.MaxHealthLog {
		return fmt.Errorf("%d probe results, limit %d", len(log), api.MaxHealthLog)
	}
	for i, r := range log {
		if len(r.Output) > api.MaxProbeOutput {
			return fmt.Errorf("[%d].output is %d bytes, limit %d", i, len(r.Output), api.MaxProbeOutput)
		}
	}
	return nil
}

func agentState(s api.TaskState) bool {
	return s >= api.TaskAccepted && s <= api.TaskRejected
}
