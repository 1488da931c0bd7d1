package orchestrator

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

const testMonitor = 5 * time.Second

// rolloutSpec is a spec of n replicas with the given update config (the
// monitor window is testMonitor unless set).
func rolloutSpec(n uint64, uc api.UpdateConfig) api.ServiceSpec {
	spec := replicated("web", n)
	if uc.Monitor == 0 {
		uc.Monitor = api.Duration(testMonitor)
	}
	if uc.FailureAction == "" {
		uc.FailureAction = api.FailurePause
	}
	spec.UpdateConfig = uc
	spec.RollbackConfig = api.UpdateConfig{FailureAction: api.FailurePause, Monitor: api.Duration(testMonitor)}
	return spec
}

// waitStatus waits until the service's rollout is in state want.
func (h *harness) waitStatus(svcID string, want api.UpdateState, also func(v *raftstore.View)) *api.UpdateStatus {
	h.t.Helper()
	v := h.waitFor("update status "+string(want), func(v *raftstore.View) string {
		if also != nil {
			also(v)
		}
		st := v.Service(svcID).UpdateStatus
		if st == nil || st.State != want {
			return fmt.Sprintf("status %+v", st)
		}
		return ""
	})
	return v.Service(svcID).UpdateStatus
}

// failNew reports every assigned task of version that should run as
// failed with exit code 1, as an agent would for a command that exits 1.
func (h *harness) failNew(v *raftstore.View, svcID string, version uint64) int {
	n := 0
	for _, t := range live(v, svcID) {
		if t.SpecVersion == version && t.Status.State == api.TaskAssigned {
			if h.tryReport(t, api.TaskFailed, 1) {
				n++
			}
		}
	}
	return n
}

// runOld reports, as runAll does, but only for tasks not of version bad.
func (h *harness) runAllBut(v *raftstore.View, bad uint64) {
	for _, cmd := range agentReports(v, h.clock.Now()) {
		var keep []raftstore.TaskStatusUpdate
		for _, u := range cmd.Updates {
			if t := v.Task(u.TaskID); t.SpecVersion != bad || u.Status.State != api.TaskRunning {
				keep = append(keep, u)
			}
		}
		if len(keep) > 0 {
			cmd.Updates = keep
			h.do(cmd)
		}
	}
}

// updateTo moves svc to image, keeping its update config.
func updateTo(h *harness, svc *api.Service, image string) *api.Service {
	spec := h.state.Read().Service(svc.ID).Spec
	spec.Image = image
	return h.updateService(svc.ID, spec)
}

// rollTo drives the rollout of svc to n live tasks of its current version,
// all running: the fake agents run what they are given, and the clock
// moves a monitor window on whenever the orchestrator has nothing to do
// before then (a batch is done once up for the monitor window).
func (h *harness) rollTo(svc *api.Service, n int) *raftstore.View {
	h.t.Helper()
	return h.rollToSince(svc, n, svc.SpecVersion)
}

// rollToSince is rollTo counting tasks of version since or later as new.
func (h *harness) rollToSince(svc *api.Service, n int, since uint64) *raftstore.View {
	h.t.Helper()
	for range 40 {
		h.barrier()
		v := h.state.Read()
		h.runAll(v)
		ts := live(v, svc.ID)
		if count(ts, func(t *api.Task) bool {
			return t.SpecVersion >= since && t.Status.State == api.TaskRunning
		}) == n && len(ts) == n {
			return v
		}
		h.clock.Advance(testMonitor)
	}
	h.t.Fatalf("rollout to version %d did not finish\n%s", svc.SpecVersion, dump(h.state.Read()))
	return nil
}

func TestRolloutCompletesAfterMonitor(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", nil)
	svc := h.createService(rolloutSpec(3, api.UpdateConfig{Parallelism: 2}))
	h.settle(svc, 3)
	svc = updateTo(h, svc, "busybox:2")
	h.waitStatus(svc.ID, api.UpdateUpdating, nil)
	v := h.rollTo(svc, 3)
	h.clock.Advance(testMonitor)
	st := h.waitStatus(svc.ID, api.UpdateCompleted, nil)
	// Completed no sooner than a monitor window after the last new task
	// came up.
	var lastUp time.Time
	for _, task := range live(v, svc.ID) {
		if task.Status.Timestamp.After(lastUp) {
			lastUp = task.Status.Timestamp
		}
	}
	if st.CompletedAt.Before(lastUp.Add(testMonitor)) {
		t.Errorf("completed at %s, before the monitor window of the last task (up at %s) ended", st.CompletedAt, lastUp)
	}
	if st.SpecVersion != svc.SpecVersion || st.CompletedAt.IsZero() {
		t.Errorf("completed status %+v", st)
	}
}

func TestRolloutPausesOnFailure(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", nil)
	h.addNode("n2", nil)
	svc := h.createService(rolloutSpec(6, api.UpdateConfig{Parallelism: 2}))
	before := live(h.settle(svc, 6), svc.ID)
	svc = updateTo(h, svc, "busybox:2")
	st := h.waitStatus(svc.ID, api.UpdatePaused, func(v *raftstore.View) {
		h.runAllBut(v, svc.SpecVersion)
		h.failNew(v, svc.ID, svc.SpecVersion)
	})
	if !strings.Contains(st.Message, "exit code 1") || !strings.Contains(st.Message, "max failure ratio 0") {
		t.Errorf("paused message %q does not give the reason", st.Message)
	}
	h.barrier()
	v := h.state.Read()
	// The first batch (two slots) was replaced; the other four old tasks
	// still run, untouched.
	untouched := 0
	for _, old := range before {
		if cur := v.Task(old.ID); cur.DesiredState == api.TaskRunning && cur.Status.State == api.TaskRunning {
			untouched++
		}
	}
	if untouched != 4 {
		t.Fatalf("%d old tasks still run after the pause, want 4\n%s", untouched, dump(v))
	}
	if n := count(v.TasksByService(svc.ID), func(t *api.Task) bool { return t.SpecVersion == svc.SpecVersion && t.Slot > 2 }); n != 0 {
		t.Fatalf("%d tasks of the new spec beyond the first batch\n%s", n, dump(v))
	}
}

func TestRolloutRollsBackOnFailure(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", nil)
	h.addNode("n2", nil)
	svc := h.createService(rolloutSpec(6, api.UpdateConfig{Parallelism: 2, FailureAction: api.FailureRollback}))
	h.settle(svc, 6)
	bad := updateTo(h, svc, "busybox:2")
	h.waitFor("rollback", func(v *raftstore.View) string {
		h.runAllBut(v, bad.SpecVersion)
		h.failNew(v, svc.ID, bad.SpecVersion)
		if cur := v.Service(svc.ID); cur.SpecVersion == bad.SpecVersion {
			return "still on the bad version"
		}
		return ""
	})
	v := h.state.Read()
	cur := v.Service(svc.ID)
	if cur.Spec.Image != "busybox:1" || cur.UpdateStatus.State != api.UpdateRollingBack ||
		!strings.Contains(cur.UpdateStatus.Message, "exit code 1") {
		t.Fatalf("after the failure: image %s, status %+v", cur.Spec.Image, cur.UpdateStatus)
	}
	h.settle(cur, 6)
	h.clock.Advance(testMonitor)
	st := h.waitStatus(svc.ID, api.UpdateRolledBack, func(v *raftstore.View) { h.runAll(v) })
	if !strings.Contains(st.Message, "rolled back") {
		t.Errorf("message %q", st.Message)
	}
	v = h.settle(cur, 6)
	for _, task := range live(v, svc.ID) {
		if spec := v.ServiceSpec(svc.ID, task.SpecVersion); spec.Image != "busybox:1" {
			t.Errorf("slot %d runs %s after the rollback", task.Slot, spec.Image)
		}
	}
}

func TestRolloutCanaryWaitsForPromotion(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", nil)
	h.addNode("n2", nil)
	svc := h.createService(rolloutSpec(4, api.UpdateConfig{Parallelism: 2}))
	before := live(h.settle(svc, 4), svc.ID)
	spec := h.state.Read().Service(svc.ID).Spec
	spec.Image = "busybox:2"
	spec.UpdateConfig.Canary = 1
	svc = h.updateService(svc.ID, spec)
	h.waitStatus(svc.ID, api.UpdateCanary, nil)
	v := h.waitFor("one canary running", func(v *raftstore.View) string {
		h.runAll(v)
		if n := count(live(v, svc.ID), func(t *api.Task) bool {
			return t.SpecVersion == svc.SpecVersion && t.Status.State == api.TaskRunning
		}); n != 1 {
			return fmt.Sprintf("%d canaries running", n)
		}
		return ""
	})
	for _, old := range before {
		if cur := v.Task(old.ID); cur.DesiredState != api.TaskRunning || cur.Status.State != api.TaskRunning {
			t.Fatalf("old task of slot %d is %s/%s during the canary phase", old.Slot, cur.Status.State, cur.DesiredState)
		}
	}
	h.clock.Advance(testMonitor)
	st := h.waitStatus(svc.ID, api.UpdateAwaitingPromotion, nil)
	if !strings.Contains(st.Message, "shoalctl service promote web") {
		t.Errorf("message %q", st.Message)
	}
	h.barrier()
	if n := len(live(h.state.Read(), svc.ID)); n != 5 {
		t.Fatalf("%d live tasks while waiting for promotion, want the 4 old and 1 canary\n%s", n, dump(h.state.Read()))
	}
	promoted := *st
	promoted.State = api.UpdateUpdating
	h.do(raftstore.SetUpdateStatus{ID: svc.ID, SpecVersion: svc.SpecVersion, Status: promoted,
		From: []api.UpdateState{api.UpdateCanary, api.UpdateAwaitingPromotion}, At: h.clock.Now()})
	h.rollTo(svc, 4)
	h.clock.Advance(testMonitor)
	h.waitStatus(svc.ID, api.UpdateCompleted, func(v *raftstore.View) { h.runAll(v) })
}

func TestRolloutForceReplacesEveryTask(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", nil)
	svc := h.createService(rolloutSpec(3, api.UpdateConfig{Parallelism: 1}))
	before := live(h.settle(svc, 3), svc.ID)
	spec := h.state.Read().Service(svc.ID).Spec
	spec.ForceUpdate++
	svc = h.updateService(svc.ID, spec)
	v := h.rollTo(svc, 3)
	for _, old := range before {
		if cur := v.Task(old.ID); cur.Status.State != api.TaskShutdown {
			t.Errorf("old task of slot %d is %s", old.Slot, cur.Status.State)
		}
	}
}

// TestRolloutSurvivesScale: a change of replicas in the middle of a
// rollout continues it (same start, no slot replaced twice), and a paused
// rollout stays paused when the service is scaled.
func TestRolloutSurvivesScale(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", nil)
	h.addNode("n2", nil)
	svc := h.createService(rolloutSpec(4, api.UpdateConfig{Parallelism: 1}))
	h.settle(svc, 4)
	svc = updateTo(h, svc, "busybox:2")
	first := h.waitStatus(svc.ID, api.UpdateUpdating, nil)
	h.waitFor("one slot on the new spec", func(v *raftstore.View) string {
		h.runAll(v)
		if count(live(v, svc.ID), func(t *api.Task) bool { return t.SpecVersion == svc.SpecVersion && t.Status.State == api.TaskRunning }) < 1 {
			return "none yet"
		}
		return ""
	})
	spec := h.state.Read().Service(svc.ID).Spec
	spec.Replicas = 5
	scaled := h.updateService(svc.ID, spec)
	h.waitFor("status carried to the scaled version", func(v *raftstore.View) string {
		if s := v.Service(svc.ID).UpdateStatus; s.SpecVersion != scaled.SpecVersion {
			return fmt.Sprintf("status at version %d", s.SpecVersion)
		}
		return ""
	})
	st := h.state.Read().Service(svc.ID).UpdateStatus
	if !st.StartedAt.Equal(first.StartedAt) || st.FirstVersion != svc.SpecVersion {
		t.Fatalf("status after the scale %+v, want the rollout started at %s from version %d", st, first.StartedAt, svc.SpecVersion)
	}
	v := h.rollToSince(scaled, 5, svc.SpecVersion)
	for slot := uint64(1); slot <= 4; slot++ {
		n := count(v.TasksByService(svc.ID), func(t *api.Task) bool { return t.Slot == slot && t.SpecVersion >= svc.SpecVersion })
		if n != 1 {
			t.Errorf("slot %d has %d tasks of the new spec, want 1 (replaced once)\n%s", slot, n, dump(v))
		}
	}
	h.clock.Advance(testMonitor)
	h.waitStatus(svc.ID, api.UpdateCompleted, func(v *raftstore.View) { h.runAll(v) })

	// A paused rollout stays paused through a scale.
	bad := updateTo(h, scaled, "busybox:bad")
	h.waitStatus(svc.ID, api.UpdatePaused, func(v *raftstore.View) {
		h.runAllBut(v, bad.SpecVersion)
		h.failNew(v, svc.ID, bad.SpecVersion)
	})
	spec = h.state.Read().Service(svc.ID).Spec
	spec.Replicas = 3
	scaled = h.updateService(svc.ID, spec)
	h.waitFor("paused status at the scaled version", func(v *raftstore.View) string {
		s := v.Service(svc.ID).UpdateStatus
		if s.SpecVersion != scaled.SpecVersion || s.State != api.UpdatePaused {
			return fmt.Sprintf("status %+v", s)
		}
		return ""
	})
}

// TestRolloutRollbackAfterScale: a rollout carried on by a scale rolls back
// to the spec before the rollout (not the one before the scale), keeping
// the new replica count.
func TestRolloutRollbackAfterScale(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", nil)
	svc := h.createService(rolloutSpec(3, api.UpdateConfig{Parallelism: 1, FailureAction: api.FailureRollback}))
	h.settle(svc, 3)
	bad := updateTo(h, svc, "busybox:bad")
	h.waitStatus(svc.ID, api.UpdateUpdating, nil)
	spec := h.state.Read().Service(svc.ID).Spec
	spec.Replicas = 4
	scaled := h.updateService(svc.ID, spec)
	h.waitFor("rollback", func(v *raftstore.View) string {
		h.runAllBut(v, bad.SpecVersion)
		h.failNew(v, svc.ID, bad.SpecVersion)
		h.failNew(v, svc.ID, scaled.SpecVersion)
		if cur := v.Service(svc.ID); cur.SpecVersion <= scaled.SpecVersion {
			return fmt.Sprintf("still at version %d", cur.SpecVersion)
		}
		return ""
	})
	cur := h.state.Read().Service(svc.ID)
	if cur.Spec.Image != "busybox:1" || cur.Spec.Replicas != 4 || cur.UpdateStatus.State != api.UpdateRollingBack {
		t.Fatalf("after the rollback: image %s replicas %d status %+v, want busybox:1, 4, rolling_back",
			cur.Spec.Image, cur.Spec.Replicas, cur.UpdateStatus)
	}
}

// TestRolloutCountsNotHealthyAsFailure: with a health check, a new task
// that runs but is not healthy by the end of its monitor window is a
// failure, and the rollout pauses before the next batch.
func TestRolloutCountsNotHealthyAsFailure(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", nil)
	spec := rolloutSpec(3, api.UpdateConfig{Parallelism: 1})
	spec.Healthcheck = &api.Healthcheck{Test: []string{"CMD", "true"}, Interval: api.Duration(time.Second)}
	svc := h.createService(spec)
	h.waitFor("3 healthy", func(v *raftstore.View) string {
		n := 0
		for _, task := range live(v, svc.ID) {
			switch {
			case task.Status.State == api.TaskAssigned:
				h.reportHealth(task, api.HealthHealthy)
			case task.Status.State == api.TaskRunning && task.Status.Health == api.HealthHealthy:
				n++
			}
		}
		if n != 3 {
			return fmt.Sprintf("%d healthy", n)
		}
		return ""
	})
	svc = updateTo(h, svc, "busybox:2")
	h.waitFor("the first new task running, starting", func(v *raftstore.View) string {
		h.runAllBut(v, svc.SpecVersion)
		for _, task := range live(v, svc.ID) {
			if task.SpecVersion == svc.SpecVersion && task.Status.State == api.TaskAssigned {
				h.reportHealth(task, api.HealthStarting)
				return ""
			}
		}
		return "no new task assigned yet"
	})
	h.barrier()
	if st := h.state.Read().Service(svc.ID).UpdateStatus; st.State != api.UpdateUpdating {
		t.Fatalf("status %+v within the monitor window, want updating", st)
	}
	h.clock.Advance(testMonitor)
	st := h.waitStatus(svc.ID, api.UpdatePaused, nil)
	if !strings.Contains(st.Message, "was not up within 5s") {
		t.Errorf("paused message %q", st.Message)
	}
	if n := count(h.state.Read().TasksByService(svc.ID), func(t *api.Task) bool { return t.SpecVersion == svc.SpecVersion }); n != 1 {
		t.Errorf("%d tasks of the new spec, want the first batch's only", n)
	}
}

// TestRolloutRollbackDropsCanaries: a rollback of an update waiting for
// its promotion stops the canaries and keeps every old task.
func TestRolloutRollbackDropsCanaries(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", nil)
	svc := h.createService(rolloutSpec(3, api.UpdateConfig{Parallelism: 1}))
	before := live(h.settle(svc, 3), svc.ID)
	spec := h.state.Read().Service(svc.ID).Spec
	spec.Image, spec.UpdateConfig.Canary = "busybox:2", 1
	svc = h.updateService(svc.ID, spec)
	h.waitFor("a canary running", func(v *raftstore.View) string {
		h.runAll(v)
		if count(live(v, svc.ID), func(t *api.Task) bool { return t.SpecVersion == svc.SpecVersion && t.Status.State == api.TaskRunning }) != 1 {
			return "no canary running"
		}
		return ""
	})
	h.clock.Advance(testMonitor)
	h.waitStatus(svc.ID, api.UpdateAwaitingPromotion, nil)
	h.do(raftstore.RollbackService{ID: svc.ID, ExpectedVersion: svc.SpecVersion, At: h.clock.Now()})
	h.clock.Advance(testMonitor)
	h.waitStatus(svc.ID, api.UpdateRolledBack, func(v *raftstore.View) { h.runAll(v) })
	v := h.settle(svc, 3)
	for _, old := range before {
		if cur := v.Task(old.ID); cur.DesiredState != api.TaskRunning || cur.Status.State != api.TaskRunning {
			t.Errorf("old task of slot %d is %s/%s after the rollback, want still running", old.Slot, cur.Status.State, cur.DesiredState)
		}
	}
	for _, task := range v.TasksByService(svc.ID) {
		if task.SpecVersion == svc.SpecVersion && task.Status.State != api.TaskShutdown {
			t.Errorf("canary %s is %s after the rollback, want shut down", task.ID, task.Status.State)
		}
	}
}
