package raftstore

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// rolloutLog is an update, a rollout status, a task that reports running
// (its start recorded) and a rollback, as the log carries them.
func rolloutLog() []Command {
	web := testService("svc-web", "web", 2)
	next := web.Spec
	next.Image = "busybox:2"
	task := testTask("t1", web, 1)
	task.NodeID = "n1"
	task.Status.State = api.TaskAssigned
	t1 := t0.Add(time.Second)
	return []Command{
		UpsertNode{Node: testNode("n1", api.NodeReady, api.AvailabilityActive)},
		CreateService{Service: web},
		WriteTasks{Create: []*api.Task{task}, At: t0},
		UpdateTaskStatus{NodeID: "n1", At: t1, Updates: []TaskStatusUpdate{{TaskID: "t1",
			Status: api.TaskStatus{State: api.TaskRunning, Timestamp: t1}}}},
		UpdateService{ID: "svc-web", Spec: next, At: t1},
		SetUpdateStatus{ID: "svc-web", SpecVersion: 2, At: t1, Status: api.UpdateStatus{
			State: api.UpdateUpdating, SpecVersion: 2, StartedAt: t1, Message: "started"}},
		RollbackService{ID: "svc-web", ExpectedVersion: 2, Message: "bad", At: t1},
	}
}

func TestRolloutCommandsSurviveSnapshot(t *testing.T) {
	src := &fsm{state: NewState()}
	applyLog(t, src, rolloutLog(), 1)
	v := src.state.Read()
	svc := v.Service("svc-web")
	if svc.SpecVersion != 3 || svc.Spec.Image != "busybox" || svc.PreviousSpec.Image != "busybox:2" {
		t.Fatalf("after rollback: version %d image %q previous %q, want 3 busybox busybox:2",
			svc.SpecVersion, svc.Spec.Image, svc.PreviousSpec.Image)
	}
	if st := svc.UpdateStatus; st == nil || st.State != api.UpdateRollingBack || st.SpecVersion != 3 || st.Message != "bad" {
		t.Fatalf("update status = %+v, want rolling_back of version 3", st)
	}
	if got := v.Task("t1").StartedAt; !got.Equal(t0.Add(time.Second)) {
		t.Fatalf("task started at %v, want the running report's time", got)
	}
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	dst := &fsm{state: NewState()}
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got, want := dump(t, dst.state.Read()), dump(t, v); got != want {
		t.Errorf("restored state differs:\n got %s\nwant %s", got, want)
	}
}

func TestRolloutCommandsRefuse(t *testing.T) {
	s := NewState()
	for _, c := range rolloutLog()[:5] {
		if _, _, err := s.apply(0, c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	st := api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 1}
	tests := []struct {
		name string
		cmd  Command
		want error
	}{
		{"status of an older version", SetUpdateStatus{ID: "svc-web", SpecVersion: 1, Status: st}, ErrConflict},
		{"promotion of a rollout not in its canary phase", SetUpdateStatus{ID: "svc-web", SpecVersion: 2,
			From: []api.UpdateState{api.UpdateCanary}, Status: api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 2}}, ErrConflict},
		{"status of no service", SetUpdateStatus{ID: "nope", SpecVersion: 1, Status: st}, ErrNotFound},
		{"rollback at the wrong version", RollbackService{ID: "svc-web", ExpectedVersion: 1}, ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := dump(t, s.Read())
			if _, _, err := s.apply(0, tt.cmd); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if dump(t, s.Read()) != before {
				t.Error("a refused command changed the state")
			}
		})
	}
	// A service never updated has nothing to roll back to.
	fresh := testService("svc-new", "new", 1)
	if _, _, err := s.apply(0, CreateService{Service: fresh}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.apply(0, RollbackService{ID: "svc-new"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("rollback without a previous spec: err = %v, want ErrInvalid", err)
	}
}

// TestRollbackToVersion: a rollback to a stored version takes that spec
// with the current replicas.
func TestRollbackToVersion(t *testing.T) {
	s := NewState()
	for _, c := range rolloutLog()[:5] { // version 2 runs busybox:2
		if _, _, err := s.apply(0, c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	scaled := s.Read().Service("svc-web").Spec
	scaled.Replicas = 5
	if _, _, err := s.apply(0, UpdateService{ID: "svc-web", Spec: scaled, At: t0}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.apply(0, RollbackService{ID: "svc-web", ExpectedVersion: 3, ToVersion: 1, At: t0}); err != nil {
		t.Fatal(err)
	}
	svc := s.Read().Service("svc-web")
	if svc.SpecVersion != 4 || svc.Spec.Image != "busybox" || svc.Spec.Replicas != 5 {
		t.Fatalf("after the rollback to version 1: version %d image %q replicas %d, want 4 busybox 5",
			svc.SpecVersion, svc.Spec.Image, svc.Spec.Replicas)
	}
	if _, _, err := s.apply(0, RollbackService{ID: "svc-web", ToVersion: 9, At: t0}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("rollback to a later version: err %v, want ErrInvalid", err)
	}
}
