package agent_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/poll"
)

func newTask(id, image string, desired api.TaskState) *api.Task {
	return &api.Task{
		ID: id, ServiceID: "svc", ServiceName: "web", Slot: 1, DesiredState: desired,
		Spec:   &api.ServiceSpec{Name: "web", Image: image, StopGracePeriod: api.Duration(50 * time.Millisecond)},
		Status: api.TaskStatus{State: api.TaskAssigned},
	}
}

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	poll.Until(t, timeout, cond)
}

// holdsFor polls cond for d and fails the test as soon as it does not hold.
func holdsFor(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := cond(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-t.Context().Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func waitState(t *testing.T, w *agent.Worker, id string, want api.TaskState) api.TaskStatus {
	t.Helper()
	var st api.TaskStatus
	waitFor(t, 5*time.Second, func() error {
		var ok bool
		st, ok = w.Status(id)
		if !ok {
			return fmt.Errorf("task %s unknown to the worker", id)
		}
		if st.State != want {
			return fmt.Errorf("task %s is %s (%q %q), want %s", id, st.State, st.Message, st.Err, want)
		}
		return nil
	})
	return st
}

func startWorker(t *testing.T, rt agent.Runtime, dir string) (*agent.Worker, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	w, err := agent.NewWorker(ctx, rt, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); w.Wait() })
	return w, cancel
}

func TestTaskLifecycle(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name       string
		script     fake.Script
		want       api.TaskState
		wantErr    string
		wantCode   int32
		wantStarts int
	}{
		{name: "runs", want: api.TaskRunning, wantStarts: 1},
		{name: "pull fails", script: fake.Script{PullErr: boom}, want: api.TaskRejected, wantErr: "boom"},
		{name: "create fails", script: fake.Script{CreateErr: boom}, want: api.TaskRejected, wantErr: "boom"},
		{name: "start fails", script: fake.Script{StartErr: boom}, want: api.TaskFailed, wantErr: "boom"},
		{name: "exits 0", script: fake.Script{RunFor: 10 * time.Millisecond}, want: api.TaskComplete, wantStarts: 1},
		{name: "exits 3", script: fake.Script{RunFor: 10 * time.Millisecond, ExitCode: 3}, want: api.TaskFailed, wantErr: "(3)", wantCode: 3, wantStarts: 1},
		{name: "oom", script: fake.Script{RunFor: 10 * time.Millisecond, ExitCode: 137, OOMKilled: true}, want: api.TaskFailed, wantErr: "OOM", wantCode: 137, wantStarts: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := fake.New()
			rt.ScriptImage("img", tc.script)
			w, _ := startWorker(t, rt, t.TempDir())
			w.Full(newTask("t1", "img", api.TaskRunning))
			st := waitState(t, w, "t1", tc.want)
			if !strings.Contains(st.Err, tc.wantErr) {
				t.Errorf("err = %q, want it to contain %q", st.Err, tc.wantErr)
			}
			if st.ExitCode != tc.wantCode {
				t.Errorf("exit code = %d, want %d", st.ExitCode, tc.wantCode)
			}
			if got := rt.Starts("t1"); got != tc.wantStarts {
				t.Errorf("started %d times, want %d", got, tc.wantStarts)
			}
			if got := w.Reported()["t1"]; got.State != tc.want {
				t.Errorf("latest reported state = %s, want %s", got.State, tc.want)
			}
		})
	}
}

func TestShutdownAndRemoval(t *testing.T) {
	tests := []struct {
		name      string
		act       func(w *agent.Worker, t1 *api.Task)
		wantState api.TaskState // of t1 after; 0: forgotten
	}{
		{name: "desired shutdown", act: func(w *agent.Worker, t1 *api.Task) {
			t1 = t1.Clone()
			t1.DesiredState = api.TaskShutdown
			w.Increment([]*api.Task{t1})
		}, wantState: api.TaskShutdown},
		{name: "removed by increment", act: func(w *agent.Worker, t1 *api.Task) {
			w.Increment(nil, t1.ID)
		}},
		{name: "left out of a full set", act: func(w *agent.Worker, t1 *api.Task) {
			w.Full(newTask("t2", "img", api.TaskRunning))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := fake.New()
			rt.ScriptImage("img", fake.Script{IgnoreSIGTERM: true})
			w, _ := startWorker(t, rt, t.TempDir())
			t1 := newTask("t1", "img", api.TaskRunning)
			w.Full(t1)
			waitState(t, w, "t1", api.TaskRunning)
			tc.act(w, t1)
			waitFor(t, 5*time.Second, func() error {
				if rt.Task("t1") != nil {
					return errors.New("container t1 still exists")
				}
				st, ok := w.Status("t1")
				switch {
				case tc.wantState == 0 && ok:
					return fmt.Errorf("worker still has t1 (%s)", st.State)
				case tc.wantState != 0 && st.State != tc.wantState:
					return fmt.Errorf("t1 is %s, want %s", st.State, tc.wantState)
				}
				return nil
			})
			var stopped bool
			for _, c := range rt.Calls() {
				stopped = stopped || (c.Op == "stop" && c.Target == "t1")
			}
			if !stopped {
				t.Error("t1 was removed without a stop")
			}
		})
	}
}

// TestRestartAdopts restarts the worker on the same records and runtime:
// running containers are adopted, not started again; a held task does not
// move on before a full set confirms it; a container that vanished fails.
func TestRestartAdopts(t *testing.T) {
	rt := fake.New()
	rt.ScriptImage("img", fake.Script{})
	dir := t.TempDir()
	w1, stop1 := startWorker(t, rt, dir)
	a, b, c := newTask("a", "img", api.TaskRunning), newTask("b", "img", api.TaskRunning), newTask("c", "img", api.TaskRunning)
	w1.Full(a, b, c)
	for _, id := range []string{"a", "b", "c"} {
		waitState(t, w1, id, api.TaskRunning)
	}
	stop1()
	w1.Wait()
	if err := w1.Flush(); err != nil {
		t.Fatal(err)
	}
	// While the agent is away: c's container is removed by someone.
	if err := rt.Stop(t.Context(), "c", 0); err != nil {
		t.Fatal(err)
	}
	if err := rt.Remove(t.Context(), "c"); err != nil {
		t.Fatal(err)
	}

	w2, _ := startWorker(t, rt, dir)
	waitState(t, w2, "a", api.TaskRunning)
	waitState(t, w2, "c", api.TaskFailed)
	// The leader still has a, b running; it orphaned nothing.
	for _, tk := range []*api.Task{a, b, c} {
		tk.Status.State = api.TaskRunning
	}
	w2.Full(a, b, c)
	waitState(t, w2, "b", api.TaskRunning)
	for _, id := range []string{"a", "b"} {
		if n := rt.Starts(id); n != 1 {
			t.Errorf("task %s started %d times, want 1 (adopted)", id, n)
		}
	}
	if n := rt.Starts("c"); n != 1 {
		t.Errorf("vanished task c started %d times, want 1 (never restarted)", n)
	}
}

// TestHeldUntilConfirmed: a task recorded before it started is not
// started by a restarted agent until the leader confirms it; one the
// leader dropped is removed without ever starting.
func TestHeldUntilConfirmed(t *testing.T) {
	rt := fake.New()
	rt.ScriptImage("slow", fake.Script{PullDelay: time.Hour})
	rt.ScriptImage("img", fake.Script{})
	dir := t.TempDir()
	w1, stop1 := startWorker(t, rt, dir)
	keep, drop := newTask("keep", "slow", api.TaskRunning), newTask("drop", "slow", api.TaskRunning)
	w1.Full(keep, drop)
	waitState(t, w1, "keep", api.TaskPreparing)
	waitState(t, w1, "drop", api.TaskPreparing)
	stop1()
	w1.Wait()
	if err := w1.Flush(); err != nil {
		t.Fatal(err)
	}

	rt.ScriptImage("slow", fake.Script{})
	w2, _ := startWorker(t, rt, dir)
	// A task the agent knows only from its own records must not move on.
	if _, ok := w2.Status("drop"); !ok {
		t.Fatal("restarted worker lost its record of task drop")
	}
	holdsFor(t, 300*time.Millisecond, func() error {
		for _, c := range rt.Calls() {
			if c.Op != "pull" {
				return fmt.Errorf("held tasks reached the runtime before confirmation: %+v", c)
			}
		}
		return nil
	})
	w2.Full(keep)
	waitState(t, w2, "keep", api.TaskRunning)
	waitFor(t, 5*time.Second, func() error {
		if _, ok := w2.Status("drop"); ok {
			return errors.New("dropped task still known")
		}
		return nil
	})
	if n := rt.Starts("drop"); n != 0 {
		t.Errorf("dropped task started %d times, want 0", n)
	}
}

// TestNeverBackwards: a stale copy of a task from the leader (an older
// state) does not move the agent's status back.
func TestNeverBackwards(t *testing.T) {
	rt := fake.New()
	w, _ := startWorker(t, rt, t.TempDir())
	t1 := newTask("t1", "img", api.TaskRunning)
	w.Full(t1)
	waitState(t, w, "t1", api.TaskRunning)
	w.Reported()
	w.Full(t1) // status assigned, as the leader may still have it
	w.Increment([]*api.Task{t1})
	if st, _ := w.Status("t1"); st.State != api.TaskRunning {
		t.Fatalf("t1 went from running to %s", st.State)
	}
	if got := w.Reported(); len(got) != 0 {
		t.Fatalf("stale assignments made the worker report %v", got)
	}
	if n := rt.Starts("t1"); n != 1 {
		t.Fatalf("t1 started %d times, want 1", n)
	}
}

// TestLeaderStatusAhead: the agent's records lag behind (it crashed before
// writing them); the leader's copy of the task, with the state the agent
// reported before, is taken over instead of redoing steps.
func TestLeaderStatusAhead(t *testing.T) {
	rt := fake.New()
	rt.ScriptImage("slow", fake.Script{PullDelay: time.Hour})
	dir := t.TempDir()
	w1, stop1 := startWorker(t, rt, dir)
	t1 := newTask("t1", "slow", api.TaskRunning)
	w1.Full(t1)
	waitState(t, w1, "t1", api.TaskPreparing)
	stop1()
	w1.Wait()
	if err := w1.Flush(); err != nil {
		t.Fatal(err)
	}
	rt.ScriptImage("slow", fake.Script{})
	calls := len(rt.Calls())

	w2, _ := startWorker(t, rt, dir)
	done := t1.Clone()
	done.Status = api.TaskStatus{State: api.TaskComplete, Message: "exited with code 0"}
	w2.Full(done)
	waitState(t, w2, "t1", api.TaskComplete)
	holdsFor(t, 200*time.Millisecond, func() error {
		if got := rt.Calls()[calls:]; len(got) != 0 {
			return fmt.Errorf("a completed task reached the runtime again: %+v", got)
		}
		return nil
	})
}
