package api

import (
	"fmt"
	"strings"
)

// TaskState is a step in a task's life. States only move forward:
//
//	new → pending → assigned → accepted → preparing → starting → running
//	    → complete | shutdown | failed | rejected | orphaned | remove
//
// Every state after running is terminal: the task never runs again.
type TaskState int

const (
	TaskNew TaskState = iota
	TaskPending
	TaskAssigned
	TaskAccepted
	TaskPreparing
	TaskStarting
	TaskRunning
	TaskComplete
	TaskShutdown
	TaskFailed
	TaskRejected
	TaskOrphaned
	// TaskRemove is a desired state only: stop the task and delete it.
	TaskRemove
)

var taskStateNames = [...]string{
	TaskNew:       "new",
	TaskPending:   "pending",
	TaskAssigned:  "assigned",
	TaskAccepted:  "accepted",
	TaskPreparing: "preparing",
	TaskStarting:  "starting",
	TaskRunning:   "running",
	TaskComplete:  "complete",
	TaskShutdown:  "shutdown",
	TaskFailed:    "failed",
	TaskRejected:  "rejected",
	TaskOrphaned:  "orphaned",
	TaskRemove:    "remove",
}

// String returns the lower-case name used by shoalctl and the JSON output.
func (s TaskState) String() string {
	if s >= 0 && int(s) < len(taskStateNames) {
		return taskStateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// ParseTaskState reads a state name.
func ParseTaskState(name string) (TaskState, error) {
	for i, n := range taskStateNames {
		if n == strings.ToLower(name) {
			return TaskState(i), nil
		}
	}
	return 0, fmt.Errorf("task state %q: want one of %s", name, strings.Join(taskStateNames[:], ", "))
}

// MarshalText writes the state name.
func (s TaskState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state name.
func (s *TaskState) UnmarshalText(b []byte) error {
	v, err := ParseTaskState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Terminal reports whether a task in state s will never run again.
func (s TaskState) Terminal() bool { return s > TaskRunning }

// Active reports whether a task in state s holds (or is about to hold) its
// node's resources: assigned to a node and not yet terminal.
func (s TaskState) Active() bool { return s >= TaskAssigned && s <= TaskRunning }

// CanMoveTo reports whether a task may go from s to next: forward only, and
// never out of a terminal state.
func (s TaskState) CanMoveTo(next TaskState) bool {
	if s.Terminal() {
		return false
	}
	return next > s && next != TaskRemove
}
