package raftstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
)

func TestChanged(t *testing.T) {
	s := fixture(t)
	a := NewLocalApplier(s)
	ch := s.Changed()
	if _, err := a.Apply(t.Context(), RemoveManager{ID: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	if _, err := a.Apply(t.Context(), SetNodeStatus{ID: "n1", Status: api.NodeReady}); err != nil {
		t.Fatal(err) // no change: n1 is ready already
	}
	select {
	case <-ch:
		t.Fatal("Changed fired without a change")
	default:
	}
	if _, err := a.Apply(t.Context(), SetNodeStatus{ID: "n1", Status: api.NodeDown}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("Changed did not fire after a change")
	}
	if s.Changed() == ch {
		t.Error("Changed returned the closed channel again")
	}
}

func TestSubscribe(t *testing.T) {
	s := fixture(t)
	a := NewLocalApplier(s)
	events, cancel := s.Subscribe(8)
	defer cancel()
	slow, cancelSlow := s.Subscribe(1)
	defer cancelSlow()

	res, err := a.Apply(t.Context(), RemoveService{ID: "svc-web", At: t0})
	if err != nil {
		t.Fatal(err)
	}
	batch := <-events
	var got []string
	for _, e := range batch {
		if e.Index != res.Index {
			t.Errorf("event index %d, want %d", e.Index, res.Index)
		}
		got = append(got, e.Kind+" "+e.Action)
	}
	want := "[task update task update task update service remove]"
	if fmt.Sprint(got) != want {
		t.Errorf("events = %v, want %v", got, want)
	}
	// The slow subscriber has one batch buffered; the next one drops it.
	if _, err := a.Apply(t.Context(), SetNodeStatus{ID: "n1", Status: api.NodeDown}); err != nil {
		t.Fatal(err)
	}
	if b := <-slow; len(b) != 4 {
		t.Errorf("slow subscriber's first batch = %d events, want 4", len(b))
	}
	if _, ok := <-slow; ok {
		t.Error("slow subscriber not dropped")
	}
	if b := <-events; len(b) != 1 || b[0].Node == nil || b[0].Node.Status != api.NodeDown {
		t.Errorf("second batch = %+v", b)
	}
	cancel()
	if _, ok := <-events; ok {
		t.Error("channel open after cancel")
	}
}

func TestLocalApplierKeepsCopies(t *testing.T) {
	s := NewState()
	a := NewLocalApplier(s)
	svc := testService("svc-1", "one", 1)
	res, err := a.Apply(t.Context(), CreateService{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Env[0] = "A=changed"
	svc.Spec.Labels["tier"] = "changed"
	got := s.Read().Service("svc-1")
	if got.Spec.Env[0] != "A=1" || got.Spec.Labels["tier"] != "front" {
		t.Errorf("the store shares the caller's values: %+v", got.Spec)
	}
	if res.Index != 1 || s.Read().Index() != 1 {
		t.Errorf("index = %d, view index %d, want 1", res.Index, s.Read().Index())
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := a.Apply(ctx, RemoveService{ID: "svc-1"}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestViewOrder(t *testing.T) {
	s := NewState()
	a := NewLocalApplier(s)
	b, c := testService("svc-2", "b", 2), testService("svc-1", "c", 2)
	cmds := []Command{
		CreateService{Service: c}, CreateService{Service: b},
		UpsertNode{Node: &api.Node{ID: "z", Hostname: "alpha"}},
		UpsertNode{Node: &api.Node{ID: "a", Hostname: "beta"}},
		UpsertNode{Node: &api.Node{ID: "b", Hostname: "alpha"}},
		WriteTasks{Create: []*api.Task{testTask("x1", c, 1), testTask("x2", b, 2), testTask("x3", b, 1),
			func() *api.Task { x := testTask("x0", b, 1); x.CreatedAt = t0.Add(time.Second); return x }()}},
	}
	for _, cmd := range cmds {
		if _, err := a.Apply(t.Context(), cmd); err != nil {
			t.Fatal(err)
		}
	}
	v := s.Read()
	var got []string
	for _, x := range v.Services() {
		got = append(got, x.Spec.Name)
	}
	for _, x := range v.Nodes() {
		got = append(got, x.ID)
	}
	for _, x := range v.Tasks() {
		got = append(got, x.ID)
	}
	if want := "[b c b z a x3 x0 x2 x1]"; fmt.Sprint(got) != want {
		t.Errorf("order = %v, want %v", got, want)
	}
}

func TestTasksByDesiredState(t *testing.T) {
	s := fixture(t)
	a := NewLocalApplier(s)
	stop := s.Read().Task("t2").Clone()
	stop.DesiredState = api.TaskShutdown
	if _, err := a.Apply(t.Context(), WriteTasks{Update: []*api.Task{stop}}); err != nil {
		t.Fatal(err)
	}
	v := s.Read()
	ids := func(tasks []*api.Task) string {
		var out []string
		for _, x := range tasks {
			out = append(out, x.ID)
		}
		return fmt.Sprint(out)
	}
	for _, tc := range []struct {
		state api.TaskState
		want  string
	}{
		{api.TaskRunning, "[t1 t3]"},
		{api.TaskShutdown, "[t2]"},
		{api.TaskRemove, "[]"},
	} {
		t.Run(tc.state.String(), func(t *testing.T) {
			if got := ids(v.TasksByDesiredState(tc.state)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
