package ctl

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// benchStartDelay is how long a fake task takes to come up: the wait the
// rollout cannot go faster than, batch after batch.
const benchStartDelay = time.Second

// BenchmarkRollingUpdate30 measures a rolling update of 30 replicas by 5
// (delay 0, no monitor window) on a real manager with three fake agents
// whose tasks come up 1 s after they start: from the update to every task
// on the new spec, and the ratio to the sum of the tasks' own waits
// (6 batches × 1 s). Run it with -benchtime 1x: each iteration is one
// whole rollout.
func BenchmarkRollingUpdate30(b *testing.B) {
	e := startE2E(b, 3)
	e.mustRun("service", "create", "--name", "web", "--replicas", "30", "--reserve-cpu", "0.01",
		"--update-parallelism", "5", "--update-delay", "0s", "--update-monitor", "0s", "--timeout", "60s", "busybox:1.36")
	var total time.Duration
	i := 0
	for b.Loop() {
		i++
		image := fmt.Sprintf("busybox:slow%d", i)
		for _, rt := range e.runtimes {
			rt.ScriptImage(image, fake.Script{StartDelay: benchStartDelay})
		}
		t0 := time.Now()
		e.mustRun("service", "update", "-d", "--image", image, "web")
		version := e.services()["web"].GetSpecVersion()
		e.cluster.WaitFor(2*time.Minute, func() error {
			n := e.runningAt("web", version)
			if n != 30 {
				return fmt.Errorf("%d of 30 on version %d", n, version)
			}
			return nil
		})
		total += time.Since(t0)
	}
	perRollout := total / time.Duration(i)
	b.ReportMetric(perRollout.Seconds(), "s/rollout")
	b.ReportMetric(perRollout.Seconds()/(6*benchStartDelay.Seconds()), "x-waits")
}

// runningAt counts the service's running tasks of version.
func (e *e2e) runningAt(name string, version uint64) int {
	resp, err := e.cluster.Client(0).ListTasks(e.t.Context(), &shoalpb.ListTasksRequest{Service: name})
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, t := range resp.GetTasks() {
		if t.GetSpecVersion() == version && t.GetStatus().GetState() == "running" && t.GetDesiredState() == "running" {
			n++
		}
	}
	return n
}

// BenchmarkRollbackReaction measures, for an update to a command that
// exits 1 (failure action rollback, monitor 1 s), the time from the first
// failed task (its status time) to the rollback's start (the rollout
// status's start time), both as the cluster recorded them.
func BenchmarkRollbackReaction(b *testing.B) {
	e := startE2E(b, 2)
	for _, rt := range e.runtimes {
		rt.ScriptImage("busybox:bad", fake.Script{RunFor: 100 * time.Millisecond, ExitCode: 1})
	}
	e.mustRun("service", "create", "--name", "web", "--replicas", "6", "--update-parallelism", "2",
		"--update-monitor", "1s", "--update-failure-action", "rollback", "--rollback-monitor", "0s", "--timeout", "60s", "busybox:1.36")
	var worst, sum time.Duration
	n := 0
	for b.Loop() {
		n++
		svc := e.services()["web"]
		spec := shoalpb.ToServiceSpec(svc.GetSpec())
		spec.Image = "busybox:bad"
		resp, err := e.cluster.Client(0).UpdateService(e.t.Context(), &shoalpb.UpdateServiceRequest{
			Service: "web", Spec: shoalpb.FromServiceSpec(spec), ExpectedVersion: svc.GetSpecVersion()})
		if err != nil {
			b.Fatal(err)
		}
		bad := resp.GetService().GetSpecVersion()
		var st *api.UpdateStatus
		e.cluster.WaitFor(time.Minute, func() error {
			st = shoalpb.ToUpdateStatus(e.services()["web"].GetUpdateStatus())
			if st == nil || st.SpecVersion <= bad || st.State != api.UpdateRolledBack {
				return fmt.Errorf("rollout %+v", st)
			}
			return nil
		})
		d := st.StartedAt.Sub(e.firstFailure("web", bad))
		sum += d
		worst = max(worst, d)
	}
	b.ReportMetric(float64(sum.Milliseconds())/float64(n), "ms-to-rollback")
	b.ReportMetric(float64(worst.Milliseconds()), "ms-worst")
}

// firstFailure is the status time of the first failed task of version.
func (e *e2e) firstFailure(name string, version uint64) time.Time {
	resp, err := e.cluster.Client(0).ListTasks(e.t.Context(), &shoalpb.ListTasksRequest{Service: name})
	if err != nil {
		e.t.Fatal(err)
	}
	var first time.Time
	for _, t := range resp.GetTasks() {
		if t.GetSpecVersion() != version || t.GetStatus().GetState() != "failed" {
			continue
		}
		if at := t.GetStatus().GetTimestamp().AsTime(); first.IsZero() || at.Before(first) {
			first = at
		}
	}
	if first.IsZero() {
		e.t.Fatalf("no failed task of version %d", version)
	}
	return first
}
