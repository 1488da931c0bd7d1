package orchestrator

import (
	"context"
	"fmt"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// The rollout's state machine (api.UpdateState). Each move is a
// SetUpdateStatus (or, for an automatic rollback, a RollbackService)
// committed after the pass's task entries, and each is decided from the
// store alone: the status says which spec version the rollout moves to and
// where it stands, the tasks say how far it got. A pass that decides a
// move again after a leader change proposes the same status, which the FSM
// takes as a no-op change, or refuses when the spec moved on.

// rolloutStatus is the status the rollout of svc goes by in this pass: the
// stored one when it is for the current version; a new one, updating (or
// canary), when tasks run an outdated spec and no rollout of the current
// version has started; nil when there is nothing to roll.
func (p *pass) rolloutStatus(svc *api.Service, r survey) *api.UpdateStatus {
	st := svc.UpdateStatus
	if st != nil && st.SpecVersion == svc.SpecVersion {
		return st
	}
	if st != nil && st.SpecVersion < svc.SpecVersion && p.sameRollout(svc, st) {
		// Only replicas or policies changed since: the same rollout, at
		// the new version.
		next := *st
		next.FirstVersion, next.SpecVersion = st.Since(), svc.SpecVersion
		p.setStatus(svc, next)
		return &next
	}
	if r.outdated == 0 {
		return nil
	}
	next := api.UpdateStatus{
		State: api.UpdateUpdating, SpecVersion: svc.SpecVersion, StartedAt: p.now,
		Message: fmt.Sprintf("update to spec version %d started", svc.SpecVersion),
	}
	if c := svc.Spec.UpdateConfig.Canary; c > 0 && svc.Spec.Mode != api.ModeGlobal {
		next.State = api.UpdateCanary
		next.Message = fmt.Sprintf("update to spec version %d started with %d canaries", svc.SpecVersion, c)
	}
	p.setStatus(svc, next)
	return &next
}

// sameRollout reports whether the spec st's rollout moves to runs as the
// service's current spec does.
func (p *pass) sameRollout(svc *api.Service, st *api.UpdateStatus) bool {
	spec := p.view.ServiceSpec(svc.ID, st.SpecVersion)
	return spec != nil && api.SameRuntime(spec, &svc.Spec)
}

// monitorOf is the monitor window of cfg.
func monitorOf(cfg api.UpdateConfig) time.Duration { return cfg.Monitor.Std() }

// failures lists why the tasks of the rollout's version failed (see
// api.RolloutFailure), in group order, and asks for a pass when a task's
// verdict may change.
func (p *pass) failures(svc *api.Service, r survey, monitor time.Duration) []string {
	var out []string
	for _, g := range r.groups {
		for _, ts := range [][]*api.Task{g.past, g.dead, g.live} {
			for _, t := range ts {
				if t.SpecVersion < r.since || p.dirtySpec(svc, t) {
					continue
				}
				why, next := api.RolloutFailure(t, &svc.Spec, monitor, p.now)
				p.wakeAt(next)
				if why != "" {
					out = append(out, why)
				}
			}
		}
	}
	return out
}

// failureAction counts the rollout's failures and, past the ratio, runs
// the failure action: pause, or roll back (a rollback that fails pauses).
// It reports whether the rollout must stop here for this pass.
func (p *pass) failureAction(svc *api.Service, st *api.UpdateStatus, cfg api.UpdateConfig, r survey) bool {
	fails := p.failures(svc, r, monitorOf(cfg))
	if !api.FailureRatioExceeded(len(fails), len(r.groups), cfg.MaxFailureRatio) {
		return false
	}
	why := fmt.Sprintf("%d of %d tasks failed (max failure ratio %g): %s",
		len(fails), len(r.groups), cfg.MaxFailureRatio, fails[0])
	action := cfg.FailureAction
	if action == "" {
		action = api.FailurePause
	}
	switch {
	case action == api.FailureContinue:
		return false
	case action == api.FailureRollback && !st.State.Rollback():
		rb := raftstore.RollbackService{
			ID: svc.ID, ExpectedVersion: svc.SpecVersion, At: p.now,
			Message: fmt.Sprintf("rolling back spec version %d: %s", svc.SpecVersion, why),
		}
		if r.since < svc.SpecVersion {
			// A scale carried the rollout on: back to the spec before it.
			rb.ToVersion = r.since - 1
		}
		p.rollback = append(p.rollback, rb)
		return true
	}
	next := *st
	next.State, next.Message = api.UpdatePaused, "update paused: "+why
	if st.State.Rollback() {
		next.State, next.Message = api.UpdateRollbackPaused, "rollback paused: "+why
	}
	p.setStatus(svc, next)
	return true
}

// maybeComplete ends the rollout once no group is left on an outdated spec
// and every task of the new spec has been up for the monitor window.
func (p *pass) maybeComplete(svc *api.Service, st *api.UpdateStatus, cfg api.UpdateConfig, r survey) {
	if r.outdated > 0 || !p.allUpFor(svc, r.current, monitorOf(cfg)) {
		return
	}
	next := *st
	next.CompletedAt = p.now
	if st.State.Rollback() {
		next.State = api.UpdateRolledBack
		next.Message = fmt.Sprintf("rolled back to the previous spec (now version %d)", svc.SpecVersion)
		if st.Message != "" {
			next.Message += "; " + st.Message
		}
	} else {
		next.State = api.UpdateCompleted
		next.Message = fmt.Sprintf("update to spec version %d completed", svc.SpecVersion)
	}
	p.setStatus(svc, next)
}

// setStatus records a move of svc's rollout, unless the stored status says
// the same already.
func (p *pass) setStatus(svc *api.Service, st api.UpdateStatus) {
	if cur := svc.UpdateStatus; cur != nil && *cur == st {
		return
	}
	p.statuses = append(p.statuses, raftstore.SetUpdateStatus{
		ID: svc.ID, SpecVersion: svc.SpecVersion, Status: st, At: p.now,
	})
}

// commitRollouts commits the rollouts' moves of pass p in one entry, after
// its task entries. Each is checked by the FSM against the spec version it
// was decided on; one refused (the spec moved on) is left to the next pass.
func (o *Orchestrator) commitRollouts(ctx context.Context, p *pass) error {
	var cmds []raftstore.Command
	for _, s := range p.statuses {
		cmds = append(cmds, s)
	}
	for _, r := range p.rollback {
		cmds = append(cmds, r)
	}
	if len(cmds) == 0 {
		return nil
	}
	resp, err := o.applier.Apply(ctx, raftstore.Batch{Commands: cmds})
	if err != nil {
		return err
	}
	results, _ := resp.Value.([]raftstore.BatchResult)
	for i, r := range results {
		if r.Err != nil {
			o.log.Info("rollout move not applied; the next pass decides again", "index", resp.Index, "err", r.Err)
			continue
		}
		switch c := cmds[i].(type) {
		case raftstore.SetUpdateStatus:
			o.log.Info("rollout", "service_id", c.ID, "spec_version", c.SpecVersion,
				"state", string(c.Status.State), "message", c.Status.Message)
		case raftstore.RollbackService:
			o.log.Warn("rollout failed; rolling back", "service_id", c.ID, "spec_version", c.ExpectedVersion, "message", c.Message)
		}
	}
	return nil
}
