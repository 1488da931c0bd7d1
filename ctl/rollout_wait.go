package ctl

import (
	"fmt"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// foldRollout adds to v, the view of a service waited for at spec version
// want, where the manager's rollout of that version stands. The rollout's
// rules (failures, ratio, action, monitor window) are the orchestrator's:
// shoalctl reads the state they put the service in, it does not judge the
// tasks again. A rollout that paused, or that rolled want back, ends the
// wait with its reason; one in progress holds the wait until it completes
// (the manager watched the monitor window, so no settling is added).
func foldRollout(v *view, svc *shoalpb.Service, want uint64) {
	st := shoalpb.ToUpdateStatus(svc.GetUpdateStatus())
	if st == nil || st.SpecVersion < want {
		return // no rollout of this version: a change with nothing to roll
	}
	rolledBackFrom := st.SpecVersion > want && st.State.Rollback()
	if st.SpecVersion > want && !rolledBackFrom {
		return // a later update took over; the slots show its progress
	}
	if !st.State.Done() && (svc.GetSpec().GetUpdateConfig().GetFailureAction() != api.FailureContinue || st.State.Rollback()) {
		// While the rollout runs, the manager decides what a failure
		// means for it.
		v.failure = ""
	}
	progress := fmt.Sprintf("%d/%d up to date", v.done, v.desired)
	switch st.State {
	case api.UpdatePaused, api.UpdateRollbackPaused:
		v.failure = st.Message
	case api.UpdateRolledBack:
		if rolledBackFrom {
			v.failure = st.Message
		} else {
			v.settle = 0
		}
	case api.UpdateCompleted:
		v.settle = 0
	case api.UpdateAwaitingPromotion:
		v.converged, v.settle = v.failure == "", 0
		v.summary = st.Message
	default: // updating, canary, rolling back
		v.converged = false
		v.summary = fmt.Sprintf("%s, %s: %s", progress, st.State, st.Message)
	}
}
