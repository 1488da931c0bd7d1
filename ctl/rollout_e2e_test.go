package ctl

import (
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// scriptBad makes busybox:bad a command that exits 1 soon after it starts,
// on every agent.
func (e *e2e) scriptBad() {
	for _, rt := range e.runtimes {
		rt.ScriptImage("busybox:bad", fake.Script{RunFor: 100 * time.Millisecond, ExitCode: 1})
	}
}

// liveByImage counts the service's tasks that run (desired and observed)
// by the image of their spec.
func (e *e2e) liveByImage(name string) map[string]int {
	resp, err := e.cluster.Client(0).ListTasks(e.t.Context(), &shoalpb.ListTasksRequest{Service: name})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, t := range resp.GetTasks() {
		if t.GetDesiredState() == "running" && t.GetStatus().GetState() == "running" {
			out[t.GetSpec().GetImage()]++
		}
	}
	return out
}

func (e *e2e) updateStatus(name string) *api.UpdateStatus {
	return shoalpb.ToUpdateStatus(e.services()[name].GetUpdateStatus())
}

func createRolloutService(e *e2e, action string) {
	e.mustRun("service", "create", "--name", "web", "--replicas", "6", "--timeout", "60s",
		"--update-parallelism", "2", "--update-monitor", "1s", "--update-failure-action", action,
		"--rollback-parallelism", "2", "--rollback-monitor", "1s", "busybox:1.36")
}

// TestE2ERolloutRollsBack: an update to a command that exits 1 with
// failure action rollback ends on the old spec with every replica running,
// and service update exits non-zero saying it rolled back.
func TestE2ERolloutRollsBack(t *testing.T) {
	e := startE2E(t, 2)
	e.scriptBad()
	createRolloutService(e, "rollback")
	r := e.run("service", "update", "--image", "busybox:bad", "--timeout", "60s", "web")
	if r.code == 0 || !strings.Contains(r.stderr, "rolled back to the previous spec") || !strings.Contains(r.stderr, "non-zero exit (1)") {
		t.Fatalf("update: exit %d, want non-zero saying it rolled back\nstderr: %s", r.code, r.stderr)
	}
	svc := e.services()["web"]
	if img := svc.GetSpec().GetImage(); img != "busybox:1.36" {
		t.Errorf("image after the rollback: %s, want busybox:1.36", img)
	}
	if st := e.updateStatus("web"); st == nil || st.State != api.UpdateRolledBack {
		t.Errorf("update status %+v, want rolled_back", st)
	}
	if got := e.liveByImage("web"); got["busybox:1.36"] != 6 || len(got) != 1 {
		t.Errorf("running tasks by image: %v, want 6 of busybox:1.36", got)
	}
	out := e.mustRun("service", "inspect", "--pretty", "web")
	if !strings.Contains(out, "State:             rolled_back") && !strings.Contains(out, "rolled_back") {
		t.Errorf("inspect does not show the update state:\n%s", out)
	}
}

// TestE2ERolloutPauses: the same update with failure action pause stops
// after the first batch, says why, and leaves the other replicas alone.
func TestE2ERolloutPauses(t *testing.T) {
	e := startE2E(t, 2)
	e.scriptBad()
	createRolloutService(e, "pause")
	r := e.run("service", "update", "--image", "busybox:bad", "--timeout", "60s", "web")
	if r.code == 0 || !strings.Contains(r.stderr, "update paused") || !strings.Contains(r.stderr, "non-zero exit (1)") {
		t.Fatalf("update: exit %d, want non-zero saying it paused\nstderr: %s", r.code, r.stderr)
	}
	st := e.updateStatus("web")
	if st == nil || st.State != api.UpdatePaused || !strings.Contains(st.Message, "failed") {
		t.Fatalf("update status %+v, want paused with the reason", st)
	}
	if got := e.liveByImage("web")["busybox:1.36"]; got != 4 {
		t.Errorf("%d old replicas still run, want the 4 beyond the first batch", got)
	}
	// Rolling back from the pause brings the first batch back.
	e.mustRun("service", "rollback", "--timeout", "60s", "web")
	if got := e.liveByImage("web"); got["busybox:1.36"] != 6 || len(got) != 1 {
		t.Errorf("after service rollback: %v, want 6 of busybox:1.36", got)
	}
}

// TestE2ERolloutCanary: one canary of six; not promoted, nothing else
// changes; promoted, the rest rolls.
func TestE2ERolloutCanary(t *testing.T) {
	e := startE2E(t, 2)
	createRolloutService(e, "pause")
	r := e.run("service", "update", "--image", "busybox:1.37", "--update-canary", "1", "--timeout", "60s", "web")
	if r.code != 0 || !strings.Contains(r.stderr, "awaiting promotion") {
		t.Fatalf("update with a canary: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if got := e.liveByImage("web"); got["busybox:1.36"] != 6 || got["busybox:1.37"] != 1 {
		t.Fatalf("during the canary phase: %v, want 6 old and 1 canary", got)
	}
	if st := e.updateStatus("web"); st.State != api.UpdateAwaitingPromotion {
		t.Fatalf("status %+v, want awaiting_promotion", st)
	}
	e.mustRun("service", "promote", "--timeout", "60s", "web")
	if got := e.liveByImage("web"); got["busybox:1.37"] != 6 || len(got) != 1 {
		t.Errorf("after promote: %v, want 6 of busybox:1.37", got)
	}
	if st := e.updateStatus("web"); st.State != api.UpdateCompleted {
		t.Errorf("status %+v, want completed", st)
	}
	r = e.run("service", "promote", "web")
	if r.code == 0 || !strings.Contains(r.stderr, "not in its canary phase") {
		t.Errorf("promote with nothing to promote: exit %d\nstderr: %s", r.code, r.stderr)
	}
}

// TestE2ERolloutForce: update --force replaces every task with the same
// spec, as a rollout.
func TestE2ERolloutForce(t *testing.T) {
	e := startE2E(t, 2)
	e.mustRun("service", "create", "--name", "web", "--replicas", "3", "--update-monitor", "1s", "--timeout", "60s", "busybox:1.36")
	before := e.runningTasks()["web"]
	e.mustRun("service", "update", "--force", "--timeout", "60s", "web")
	after := e.runningTasks()["web"]
	if len(after) != 3 {
		t.Fatalf("%d running after --force, want 3", len(after))
	}
	for _, id := range after {
		for _, old := range before {
			if id == old {
				t.Errorf("task %s survived --force", id)
			}
		}
	}
	if st := e.updateStatus("web"); st == nil || st.State != api.UpdateCompleted {
		t.Errorf("status %+v, want completed", st)
	}
	r := e.run("service", "update", "--rollback", "--image", "busybox:1.37", "web")
	if r.code == 0 || !strings.Contains(r.stderr, "cannot be combined with [--image]") {
		t.Errorf("update --rollback --image: exit %d\nstderr: %s", r.code, r.stderr)
	}
	e.mustRun("service", "update", "--rollback", "--rollback-parallelism", "0", "--timeout", "60s", "web")
	if st := e.updateStatus("web"); st == nil || st.State != api.UpdateRolledBack {
		t.Errorf("after update --rollback: status %+v, want rolled_back", st)
	}
	if rc := shoalpb.ToServiceSpec(e.services()["web"].GetSpec()).RollbackConfig; rc.Parallelism != 0 {
		t.Errorf("rollback config after --rollback-parallelism 0: %+v", rc)
	}
}

// TestE2EStackDeployRollsBack: a stack whose update_config says rollback,
// redeployed with an image that exits 1, rolls back and stack deploy exits
// non-zero saying so; rollback_config is honoured.
func TestE2EStackDeployRollsBack(t *testing.T) {
	e := startE2E(t, 2)
	e.scriptBad()
	base := writeCompose(t, `services:
  web:
    image: busybox:1.36
    deploy:
      replicas: 4
      update_config: {parallelism: 2, monitor: 1s, failure_action: rollback, max_failure_ratio: 0}
      rollback_config: {parallelism: 0, monitor: 1s}
`)
	e.mustRun("stack", "deploy", "-c", base, "--timeout", "60s", "st")
	svc := e.services()["st_web"]
	if rc := shoalpb.ToServiceSpec(svc.GetSpec()).RollbackConfig; rc.Parallelism != 0 || rc.FailureAction != api.FailurePause {
		t.Errorf("rollback config %+v, want parallelism 0 (all at once) and the default pause", rc)
	}
	bad := writeCompose(t, "services:\n  web:\n    image: busybox:bad\n")
	r := e.run("stack", "deploy", "-c", base, "-c", bad, "--timeout", "60s", "st")
	if r.code == 0 || !strings.Contains(r.stderr, "st_web did not converge: rolled back") {
		t.Fatalf("redeploy with a failing image: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if got := e.liveByImage("st_web"); got["busybox:1.36"] != 4 || len(got) != 1 {
		t.Errorf("after the rollback: %v, want 4 of busybox:1.36", got)
	}
}
