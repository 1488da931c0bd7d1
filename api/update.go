package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// UpdateState is where a service's rollout stands. The orchestrator moves
// it and commits every move through Raft (see UpdateStatus).
//
//	updating ──(failures > ratio, pause)──▶ paused
//	   │  ╲───(failures > ratio, rollback)──▶ rolling_back ──▶ rolled_back
//	   │                                         ╲──(failures > ratio)──▶ rollback_paused
//	   ╰──(every slot on the new spec, up for the monitor window)──▶ completed
//
//	canary ──(canaries up for the monitor window)──▶ awaiting_promotion
//	   ╲──(auto-promote, or promote)──▶ updating
type UpdateState string

const (
	UpdateUpdating          UpdateState = "updating"
	UpdatePaused            UpdateState = "paused"
	UpdateCompleted         UpdateState = "completed"
	UpdateRollingBack       UpdateState = "rolling_back"
	UpdateRollbackPaused    UpdateState = "rollback_paused"
	UpdateRolledBack        UpdateState = "rolled_back"
	UpdateCanary            UpdateState = "canary"
	UpdateAwaitingPromotion UpdateState = "awaiting_promotion"
)

// Failure actions of an UpdateConfig.
const (
	FailurePause    = "pause"
	FailureContinue = "continue"
	FailureRollback = "rollback"
)

// Orders of an UpdateConfig.
const (
	OrderStopFirst  = "stop-first"
	OrderStartFirst = "start-first"
)

// DefaultMonitor is the monitor window of an update config left unset, as
// docker's.
const DefaultMonitor = Duration(5 * time.Second)

// Halted reports whether the rollout waits for an operator (a new update,
// a rollback or a promotion).
func (s UpdateState) Halted() bool {
	return s == UpdatePaused || s == UpdateRollbackPaused || s == UpdateAwaitingPromotion
}

// Done reports whether the rollout has ended.
func (s UpdateState) Done() bool { return s == UpdateCompleted || s == UpdateRolledBack }

// Rollback reports whether the rollout moves back to the previous spec.
func (s UpdateState) Rollback() bool {
	return s == UpdateRollingBack || s == UpdateRollbackPaused || s == UpdateRolledBack
}

// Canary reports whether the rollout is in its canary phase.
func (s UpdateState) Canary() bool { return s == UpdateCanary || s == UpdateAwaitingPromotion }

// UpdateStatus is the state of the last rollout of a service: the spec
// version it moves the tasks to, where it stands and why. It lives on the
// service in the store, so a new leader continues a rollout from it.
type UpdateStatus struct {
	State UpdateState `json:"state"`
	// SpecVersion is the version the rollout moves the tasks to; a status
	// of an older version describes a rollout that a later update ended.
	SpecVersion uint64    `json:"spec_version"`
	StartedAt   time.Time `json:"started_at"`
	CompletedAt time.Time `json:"completed_at,omitzero"`
	Message     string    `json:"message,omitempty"`
	// FirstVersion is the version the rollout started at: a later change
	// of replicas or policies alone (a scale in the middle of an update)
	// continues the rollout at the new version instead of starting over.
	FirstVersion uint64 `json:"first_version,omitempty"`
}

// Since is the first spec version of the rollout: tasks of this version
// or later with the rollout's runtime spec are the rollout's.
func (s *UpdateStatus) Since() uint64 {
	if s.FirstVersion != 0 && s.FirstVersion < s.SpecVersion {
		return s.FirstVersion
	}
	return s.SpecVersion
}

// Clone returns a copy of s (nil for nil).
func (s *UpdateStatus) Clone() *UpdateStatus {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

// RolloutConfig is the config the rollout in st follows: the rollback
// config while it rolls back, the update config otherwise.
func (s *ServiceSpec) RolloutConfig(st *UpdateStatus) UpdateConfig {
	if st != nil && st.State.Rollback() {
		return s.RollbackConfig
	}
	return s.UpdateConfig
}

// TaskUpFor reports whether t has been up (TaskUp) for at least d at now;
// if not, next is when it would be, were it to stay as it is (zero when
// that cannot be known: it is not up yet).
func TaskUpFor(t *Task, spec *ServiceSpec, d time.Duration, now time.Time) (ok bool, next time.Time) {
	if t.Status.State != TaskRunning || !TaskUp(t, spec) {
		return false, time.Time{}
	}
	until := t.Status.Timestamp.Add(d)
	if now.Before(until) {
		return false, until
	}
	return true, time.Time{}
}

// RolloutFailure judges a task of a rollout against its monitor window: it
// failed if it ended on its own (failed, rejected, or complete) before it
// had run for monitor, or if it has run for monitor without being up
// (TaskUp: healthy, when the spec has a health check). why says so; next is
// when the verdict may change without a new report (zero: it will not).
// A task that was shut down or orphaned did not fail: it was stopped, or
// its node was lost.
func RolloutFailure(t *Task, spec *ServiceSpec, monitor time.Duration, now time.Time) (why string, next time.Time) {
	st := t.Status.State
	switch {
	case st == TaskFailed || st == TaskRejected || st == TaskComplete:
		if !t.StartedAt.IsZero() && t.Status.Timestamp.Sub(t.StartedAt) >= monitor {
			return "", time.Time{}
		}
		return endReason(t), time.Time{}
	case st == TaskRunning && !TaskUp(t, spec) && !t.StartedAt.IsZero() && monitor > 0:
		deadline := t.StartedAt.Add(monitor)
		if now.Before(deadline) {
			return "", deadline
		}
		return fmt.Sprintf("task %s (slot %d) was not up within %s of its start", t.ID, t.Slot, monitor), time.Time{}
	}
	return "", time.Time{}
}

func endReason(t *Task) string {
	what := fmt.Sprintf("task %s (slot %d) %s", t.ID, t.Slot, t.Status.State)
	switch {
	case t.Status.Err != "":
		what += ": " + t.Status.Err
	case t.Status.ExitCode != 0:
		what += fmt.Sprintf(": exit code %d", t.Status.ExitCode)
	}
	return what
}

// FailureRatioExceeded reports whether failures of total tasks is past
// ratio (so with ratio 0, any failure is).
func FailureRatioExceeded(failures, total int, ratio float64) bool {
	if failures == 0 {
		return false
	}
	if total <= 0 {
		return true
	}
	return float64(failures)/float64(total) > ratio
}

// UpdateBudget is how many slots a rollout may start replacing now: all
// of todo with parallelism 0, else what parallelism leaves beside those in
// flight.
func UpdateBudget(parallelism uint64, todo, inflight int) int {
	if parallelism == 0 || parallelism >= uint64(todo+inflight) {
		return todo
	}
	return max(int(parallelism)-inflight, 0)
}

// RuntimeSpec is the part of s that a running task depends on: s without
// what only steers the orchestrators (replicas, update, rollback and
// restart policies, depends_on). A task whose spec differs from its
// service's here is outdated and is replaced by a rollout.
func RuntimeSpec(s *ServiceSpec) ServiceSpec {
	c := *s
	c.Replicas, c.UpdateConfig, c.RollbackConfig, c.RestartPolicy, c.DependsOn =
		0, UpdateConfig{}, UpdateConfig{}, RestartPolicy{}, nil
	return c
}

// SameRuntime reports whether a and b agree in their RuntimeSpec (JSON
// with omitempty makes a nil and an empty list compare equal).
func SameRuntime(a, b *ServiceSpec) bool {
	return bytes.Equal(EncodeRuntimeSpec(a), EncodeRuntimeSpec(b))
}

// EncodeRuntimeSpec encodes RuntimeSpec(s), for comparisons.
func EncodeRuntimeSpec(s *ServiceSpec) []byte {
	c := RuntimeSpec(s)
	b, err := json.Marshal(&c)
	if err != nil {
		// A ServiceSpec is plain data; failing to encode it is a bug.
		panic(fmt.Sprintf("api: encode spec %q: %v", s.Name, err))
	}
	return b
}

// RolloutBatches is how a rollout of cfg replaces n outdated tasks when
// every batch comes up: the canaries first (a batch of their own), then
// batches of UpdateBudget with none in flight. A dry run shows it.
func RolloutBatches(n int, cfg UpdateConfig) []int {
	var out []int
	if c := min(int(cfg.Canary), n); c > 0 {
		out = append(out, c)
		n -= c
	}
	for n > 0 {
		b := UpdateBudget(cfg.Parallelism, n, 0)
		out = append(out, b)
		n -= b
	}
	return out
}
