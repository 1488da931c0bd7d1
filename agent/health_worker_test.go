package agent_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
)

// fastCheck probes every 10 ms; the fake answers at once.
func fastCheck(test ...string) *api.Healthcheck {
	return &api.Healthcheck{Test: test, Interval: api.Duration(10 * time.Millisecond), Timeout: api.Duration(time.Second), Retries: 2}
}

func waitHealth(t *testing.T, w *agent.Worker, id string, want api.HealthState) api.TaskStatus {
	t.Helper()
	var st api.TaskStatus
	waitFor(t, 5*time.Second, func() error {
		st, _ = w.Status(id)
		if st.Health != want {
			return fmt.Errorf("task %s is %s (health %q), want health %q", id, st.State, st.Health, want)
		}
		return nil
	})
	return st
}

func TestHealthySpecCheck(t *testing.T) {
	rt := fake.New()
	rt.ScriptImage("img", fake.Script{ProbeOutput: "ok"})
	w, _ := startWorker(t, rt, t.TempDir())
	task := newTask("t1", "img", api.TaskRunning)
	task.Spec.Healthcheck = fastCheck("CMD", "check")
	w.Full(task)
	st := waitHealth(t, w, "t1", api.HealthHealthy)
	if st.State != api.TaskRunning || len(st.HealthLog) == 0 || st.HealthLog[len(st.HealthLog)-1].Output != "ok" {
		t.Fatalf("status %+v, want running with the probe's output", st)
	}
	if !api.TaskUp(&api.Task{Status: st}, task.Spec) {
		t.Fatal("a healthy running task is not up")
	}
}

func TestUnhealthyTaskFails(t *testing.T) {
	rt := fake.New()
	w, _ := startWorker(t, rt, t.TempDir())
	task := newTask("t1", "img", api.TaskRunning)
	task.Spec.Healthcheck = fastCheck("CMD-SHELL", "test -f /ok")
	w.Full(task)
	waitHealth(t, w, "t1", api.HealthHealthy)
	rt.SetProbe("t1", 1, "no /ok\n")
	st := waitState(t, w, "t1", api.TaskFailed)
	if st.Health != api.HealthUnhealthy || !strings.Contains(st.Message, "no /ok") || !strings.Contains(st.Err, "unhealthy") {
		t.Fatalf("status %+v, want failed, unhealthy, with the probe's output", st)
	}
	waitFor(t, 5*time.Second, func() error {
		if len(rt.Running()) != 0 {
			return fmt.Errorf("containers still running: %v", rt.Running())
		}
		return nil
	})
	n := rt.Execs("t1")
	holdsFor(t, 100*time.Millisecond, func() error {
		if m := rt.Execs("t1"); m != n {
			return fmt.Errorf("probes went on after the task failed: %d then %d", n, m)
		}
		return nil
	})
}

func TestImageHealthcheckHonoured(t *testing.T) {
	rt := fake.New()
	rt.ScriptImage("img", fake.Script{Healthcheck: fastCheck("CMD", "img-check")})
	w, _ := startWorker(t, rt, t.TempDir())
	w.Full(newTask("t1", "img", api.TaskRunning))
	waitHealth(t, w, "t1", api.HealthHealthy)

	off := newTask("t2", "img", api.TaskRunning)
	off.Spec.Healthcheck = &api.Healthcheck{Test: []string{"NONE"}}
	w.Increment([]*api.Task{off})
	st := waitState(t, w, "t2", api.TaskRunning)
	holdsFor(t, 100*time.Millisecond, func() error {
		if st, _ := w.Status("t2"); st.Health != api.HealthNone || rt.Execs("t2") != 0 {
			return fmt.Errorf("health %q after %d probes, want no check", st.Health, rt.Execs("t2"))
		}
		return nil
	})
	if !api.TaskUp(&api.Task{Status: st}, off.Spec) {
		t.Fatal("a running task without a check is not up")
	}
}

func TestStartPeriodHoldsFailures(t *testing.T) {
	rt := fake.New()
	rt.ScriptImage("img", fake.Script{ProbeExit: 1})
	w, _ := startWorker(t, rt, t.TempDir())
	task := newTask("t1", "img", api.TaskRunning)
	task.Spec.Healthcheck = fastCheck("CMD", "check")
	task.Spec.Healthcheck.StartPeriod = api.Duration(time.Hour)
	w.Full(task)
	waitHealth(t, w, "t1", api.HealthStarting)
	waitFor(t, 5*time.Second, func() error {
		if n := rt.Execs("t1"); n < 5 {
			return fmt.Errorf("%d probes so far", n)
		}
		return nil
	})
	if st, _ := w.Status("t1"); st.State != api.TaskRunning || st.Health != api.HealthStarting {
		t.Fatalf("status %+v, want running (starting): failures in the start period do not count", st)
	}
	rt.SetProbe("t1", 0, "")
	waitHealth(t, w, "t1", api.HealthHealthy)
}

func TestProbesEndWithTheTask(t *testing.T) {
	rt := fake.New()
	w, _ := startWorker(t, rt, t.TempDir())
	task := newTask("t1", "img", api.TaskRunning)
	task.Spec.Healthcheck = fastCheck("CMD", "check")
	w.Full(task)
	waitHealth(t, w, "t1", api.HealthHealthy)
	stop := task.Clone()
	stop.DesiredState = api.TaskShutdown
	w.Increment([]*api.Task{stop})
	st := waitState(t, w, "t1", api.TaskShutdown)
	if st.Health != api.HealthHealthy {
		t.Fatalf("health %q after shutdown, want the last one kept", st.Health)
	}
	n := rt.Execs("t1")
	holdsFor(t, 100*time.Millisecond, func() error {
		if m := rt.Execs("t1"); m != n {
			return fmt.Errorf("probes went on after shutdown: %d then %d", n, m)
		}
		return nil
	})
}
