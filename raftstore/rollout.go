package raftstore

import (
	"fmt"
	"slices"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// Command types of the rollout (their numbers are in the log format).
const (
	CmdSetUpdateStatus CommandType = 350
	CmdRollbackService CommandType = 351
)

// SetUpdateStatus records where the rollout of service ID stands. It is
// refused (ErrConflict) unless the service is at SpecVersion — a status
// decided on an older spec must not describe a newer one — and, when From
// is set, unless the current state is one of From (a promotion applies to
// a rollout waiting in its canary phase, not to one that moved on).
type SetUpdateStatus struct {
	ID          string
	SpecVersion uint64
	From        []api.UpdateState `json:",omitempty"`
	Status      api.UpdateStatus
	At          time.Time
}

// RollbackService makes the previous spec the service's spec again, as a
// new version, and starts a rollback rollout to it. The rollback config of
// the spec rolled back from is kept (it is what the operator set last),
// unless Config replaces it. ExpectedVersion != 0 must match.
//
// ToVersion != 0 rolls back to that stored version instead of the previous
// spec, keeping the current replica count: the orchestrator's rollback of
// a rollout that a scale carried on goes back to the spec before the
// rollout, not to the one before the scale.
type RollbackService struct {
	ID              string
	ExpectedVersion uint64            `json:",omitempty"`
	ToVersion       uint64            `json:",omitempty"`
	Config          *api.UpdateConfig `json:",omitempty"`
	Message         string
	At              time.Time
}

func (SetUpdateStatus) commandType() CommandType { return CmdSetUpdateStatus }
func (RollbackService) commandType() CommandType { return CmdRollbackService }

// decodeRolloutCommand decodes the payload of the commands of this file
// (ok false for other types).
func decodeRolloutCommand(typ CommandType, p []byte) (cmd Command, ok bool, err error) {
	switch typ {
	case CmdSetUpdateStatus:
		cmd, err = decodeJSON[SetUpdateStatus](p)
	case CmdRollbackService:
		cmd, err = decodeJSON[RollbackService](p)
	default:
		return nil, false, nil
	}
	return cmd, true, err
}

func (t *tx) setUpdateStatus(c SetUpdateStatus) (any, error) {
	cur := t.service(c.ID)
	if cur == nil {
		return nil, fmt.Errorf("service id %q: %w", c.ID, ErrNotFound)
	}
	if cur.SpecVersion != c.SpecVersion || c.Status.SpecVersion != c.SpecVersion {
		return nil, fmt.Errorf("service %q: at version %d, update status is for %d: %w",
			cur.Spec.Name, cur.SpecVersion, c.SpecVersion, ErrConflict)
	}
	if len(c.From) > 0 {
		var state api.UpdateState
		if cur.UpdateStatus != nil && cur.UpdateStatus.SpecVersion == cur.SpecVersion {
			state = cur.UpdateStatus.State
		}
		if !slices.Contains(c.From, state) {
			return nil, fmt.Errorf("service %q: rollout is %q, want one of %v: %w",
				cur.Spec.Name, stateOrNone(state), c.From, ErrConflict)
		}
	}
	s := cur.Clone()
	st := c.Status
	s.UpdateStatus = &st
	s.UpdatedAt = c.At
	t.insert(tableServices, s)
	t.event("service", "update", Event{Service: s})
	return s, nil
}

func stateOrNone(s api.UpdateState) string {
	if s == "" {
		return "none"
	}
	return string(s)
}

func (t *tx) rollbackService(c RollbackService) (any, error) {
	cur := t.service(c.ID)
	if cur == nil {
		return nil, fmt.Errorf("service id %q: %w", c.ID, ErrNotFound)
	}
	if c.ExpectedVersion != 0 && c.ExpectedVersion != cur.SpecVersion {
		return nil, fmt.Errorf("service %q: at version %d, expected %d: %w",
			cur.Spec.Name, cur.SpecVersion, c.ExpectedVersion, ErrConflict)
	}
	target := cur.PreviousSpec
	if c.ToVersion != 0 {
		if c.ToVersion >= cur.SpecVersion {
			return nil, fmt.Errorf("service %q: roll back to version %d: not before the current %d: %w",
				cur.Spec.Name, c.ToVersion, cur.SpecVersion, ErrInvalid)
		}
		if old := t.spec(cur.ID, c.ToVersion); old != nil {
			target = old.Clone()
			target.Replicas = cur.Spec.Replicas
		}
	}
	if target == nil {
		return nil, fmt.Errorf("service %q: no previous spec to roll back to: %w", cur.Spec.Name, ErrInvalid)
	}
	s := cur.Clone()
	s.PreviousSpec = cur.Spec.Clone()
	s.Spec = *target.Clone()
	s.Spec.Name = cur.Spec.Name
	s.Spec.RollbackConfig = cur.Spec.RollbackConfig
	if c.Config != nil {
		s.Spec.RollbackConfig = *c.Config
	}
	if err := checkReplicas(&s.Spec); err != nil {
		return nil, err
	}
	// An older version may name a secret removed since.
	if err := t.checkSecretRefs(&s.Spec); err != nil {
		return nil, err
	}
	s.SpecVersion++
	s.UpdatedAt = c.At
	s.UpdateStatus = &api.UpdateStatus{
		State: api.UpdateRollingBack, SpecVersion: s.SpecVersion, StartedAt: c.At, Message: c.Message,
	}
	t.insert(tableServices, s)
	t.putSpec(s.ID, s.SpecVersion, &s.Spec)
	t.collectSpecs(s.ID)
	t.event("service", "update", Event{Service: s})
	return s, nil
}

// markStarted sets when task first ran, from its status (so from the
// command: every member sets the same time).
func markStarted(task *api.Task) {
	if task.StartedAt.IsZero() && task.Status.State == api.TaskRunning {
		task.StartedAt = task.Status.Timestamp
	}
}
