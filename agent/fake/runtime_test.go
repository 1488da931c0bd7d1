package fake_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
)

func task(id, image string) *api.Task {
	return &api.Task{ID: id, ServiceID: "svc", Slot: 1, Spec: &api.ServiceSpec{Image: image}}
}

// run pulls, creates and starts the task's container and returns the first
// error.
func run(ctx context.Context, rt *fake.Runtime, t *api.Task) error {
	if err := rt.Pull(ctx, t.Spec.Image); err != nil {
		return err
	}
	if err := rt.Create(ctx, t); err != nil {
		return err
	}
	return rt.Start(ctx, t.ID)
}

func TestScripts(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		script    fake.Script
		perTask   bool
		wantErr   error
		wantOps   []string
		wantExit  *agent.ExitStatus // nil: still running
		wantStart int
	}{
		{name: "default runs", wantOps: []string{"pull", "create", "start"}, wantStart: 1},
		{name: "pull fails", script: fake.Script{PullErr: boom}, wantErr: boom, wantOps: []string{"pull"}},
		{name: "create fails", script: fake.Script{CreateErr: boom}, wantErr: boom, wantOps: []string{"pull", "create"}},
		{name: "start fails", script: fake.Script{StartErr: boom}, wantErr: boom, wantOps: []string{"pull", "create", "start"}},
		{name: "task script wins", perTask: true, script: fake.Script{StartErr: boom}, wantErr: boom, wantOps: []string{"pull", "create", "start"}},
		{
			name: "exits on its own", script: fake.Script{RunFor: time.Millisecond, ExitCode: 3},
			wantOps: []string{"pull", "create", "start"}, wantExit: &agent.ExitStatus{Code: 3}, wantStart: 1,
		},
		{
			name: "oom", script: fake.Script{RunFor: time.Millisecond, ExitCode: 137, OOMKilled: true},
			wantOps: []string{"pull", "create", "start"}, wantExit: &agent.ExitStatus{Code: 137, OOMKilled: true}, wantStart: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := fake.New()
			tk := task("t1", "img")
			if tc.perTask {
				rt.ScriptImage("img", fake.Script{})
				rt.ScriptTask("t1", tc.script)
			} else {
				rt.ScriptImage("img", tc.script)
			}
			err := run(t.Context(), rt, tk)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("run: err = %v, want %v", err, tc.wantErr)
			}
			var ops []string
			for _, c := range rt.Calls() {
				ops = append(ops, c.Op)
			}
			if !equal(ops, tc.wantOps) {
				t.Errorf("calls = %v, want %v", ops, tc.wantOps)
			}
			if got := rt.Starts("t1"); got != tc.wantStart {
				t.Errorf("Starts = %d, want %d", got, tc.wantStart)
			}
			if tc.wantExit == nil {
				return
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			exit, err := rt.Wait(ctx, "t1")
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if exit.Code != tc.wantExit.Code || exit.OOMKilled != tc.wantExit.OOMKilled {
				t.Errorf("exit = %+v, want code %d oom %v", exit, tc.wantExit.Code, tc.wantExit.OOMKilled)
			}
		})
	}
}

func TestStopRemoveList(t *testing.T) {
	tests := []struct {
		name     string
		script   fake.Script
		wantCode int32
	}{
		{name: "sigterm", wantCode: 143},
		{name: "ignores sigterm", script: fake.Script{IgnoreSIGTERM: true}, wantCode: 137},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := fake.New()
			rt.ScriptImage("img", tc.script)
			if err := run(t.Context(), rt, task("t1", "img")); err != nil {
				t.Fatal(err)
			}
			list, _ := rt.List(t.Context())
			if len(list) != 1 || !list[0].Running || list[0].TaskID != "t1" || list[0].ServiceID != "svc" {
				t.Fatalf("List = %+v, want t1 running", list)
			}
			if err := rt.Remove(t.Context(), "t1"); err == nil {
				t.Fatal("Remove of a running container succeeded")
			}
			if err := rt.Stop(t.Context(), "t1", 10*time.Millisecond); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			list, _ = rt.List(t.Context())
			if len(list) != 1 || !list[0].Exited || list[0].Exit.Code != tc.wantCode {
				t.Fatalf("List after stop = %+v, want exited with %d", list, tc.wantCode)
			}
			if err := rt.Remove(t.Context(), "t1"); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if err := rt.Remove(t.Context(), "t1"); err != nil {
				t.Fatalf("second Remove: %v (want nil: missing is not an error)", err)
			}
			if _, err := rt.Wait(t.Context(), "t1"); !errors.Is(err, agent.ErrNotFound) {
				t.Fatalf("Wait after remove: err = %v, want ErrNotFound", err)
			}
			if got := rt.Starts("t1"); got != 1 {
				t.Errorf("Starts after remove = %d, want 1", got)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	rt := fake.New()
	ctx := t.Context()
	if err := rt.Create(ctx, task("t1", "never-pulled")); err == nil {
		t.Error("Create without a pull succeeded")
	}
	if err := run(ctx, rt, task("t1", "img")); err != nil {
		t.Fatal(err)
	}
	if err := rt.Create(ctx, task("t1", "img")); !errors.Is(err, fake.ErrExists) {
		t.Errorf("second Create: err = %v, want ErrExists", err)
	}
	if err := rt.Start(ctx, "t1"); !errors.Is(err, fake.ErrNotCreated) {
		t.Errorf("second Start: err = %v, want ErrNotCreated", err)
	}
	if err := rt.Start(ctx, "nope"); !errors.Is(err, agent.ErrNotFound) {
		t.Errorf("Start of unknown: err = %v, want ErrNotFound", err)
	}
	if err := rt.Stop(ctx, "nope", 0); !errors.Is(err, agent.ErrNotFound) {
		t.Errorf("Stop of unknown: err = %v, want ErrNotFound", err)
	}
	if err := rt.Pull(ctx, ""); err == nil {
		t.Error("Pull of an empty image succeeded")
	}
}

func TestPullDelayHonoursContext(t *testing.T) {
	rt := fake.New()
	rt.ScriptImage("slow", fake.Script{PullDelay: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := rt.Pull(ctx, "slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Pull: err = %v, want DeadlineExceeded", err)
	}
}

type lines []string

func (l *lines) WriteLine(stream string, at time.Time, line []byte) error {
	*l = append(*l, stream+":"+string(line))
	return nil
}

func TestLogs(t *testing.T) {
	tests := []struct {
		name string
		tail int64
		want []string
	}{
		{name: "all", tail: -1, want: []string{"stdout:a", "stdout:b", "stdout:c"}},
		{name: "tail 2", tail: 2, want: []string{"stdout:b", "stdout:c"}},
		{name: "tail 0", tail: 0, want: nil},
	}
	rt := fake.New()
	rt.ScriptImage("img", fake.Script{Logs: []string{"a", "b", "c"}})
	if err := run(t.Context(), rt, task("t1", "img")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got lines
			if err := rt.Logs(t.Context(), "t1", agent.LogOptions{Tail: tc.tail}, &got); err != nil {
				t.Fatal(err)
			}
			if !equal(got, tc.want) {
				t.Errorf("lines = %v, want %v", got, tc.want)
			}
		})
	}
	var got lines
	if err := rt.Logs(t.Context(), "nope", agent.LogOptions{Tail: -1}, &got); !errors.Is(err, agent.ErrNotFound) {
		t.Errorf("Logs of unknown: err = %v, want ErrNotFound", err)
	}
}

func TestExit(t *testing.T) {
	rt := fake.New()
	if err := run(t.Context(), rt, task("t1", "img")); err != nil {
		t.Fatal(err)
	}
	if !rt.Exit("t1", 2, false) {
		t.Fatal("Exit of a running container reported none")
	}
	if rt.Exit("t1", 2, false) {
		t.Fatal("second Exit reported a running container")
	}
	if got := rt.Running(); len(got) != 0 {
		t.Fatalf("Running = %v after exit", got)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// chanLines passes each line on a channel, for a test to read as they come.
type chanLines chan string

func (c chanLines) WriteLine(stream string, at time.Time, line []byte) error {
	c <- stream + ":" + string(line)
	return nil
}

func TestLogsFollow(t *testing.T) {
	rt := fake.New()
	rt.ScriptImage("img", fake.Script{Logs: []string{"a", "b"}})
	if err := run(t.Context(), rt, task("t1", "img")); err != nil {
		t.Fatal(err)
	}
	if rt.Print("nope", "x") {
		t.Fatal("Print to an unknown container reported one")
	}
	got := make(chanLines, 10)
	done := make(chan error, 1)
	go func() { done <- rt.Logs(t.Context(), "t1", agent.LogOptions{Tail: 1, Follow: true}, got) }()
	next := func() string {
		t.Helper()
		select {
		case l := <-got:
			return l
		case err := <-done:
			t.Fatalf("Logs ended early: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("no line within 10s")
		}
		return ""
	}
	if l := next(); l != "stdout:b" {
		t.Fatalf("first line %q, want the tail stdout:b", l)
	}
	if !rt.Print("t1", "c", "d") {
		t.Fatal("Print to a running container reported none")
	}
	for _, want := range []string{"stdout:c", "stdout:d"} {
		if l := next(); l != want {
			t.Fatalf("followed line %q, want %q", l, want)
		}
	}
	rt.Exit("t1", 0, false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Logs after exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("following logs did not end within 10s of the container's exit")
	}
	var all lines
	if err := rt.Logs(t.Context(), "t1", agent.LogOptions{Tail: -1}, &all); err != nil {
		t.Fatal(err)
	}
	if want := []string{"stdout:a", "stdout:b", "stdout:c", "stdout:d"}; !equal(all, want) {
		t.Fatalf("all lines = %v, want %v", all, want)
	}
}
