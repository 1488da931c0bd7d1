package orchestrator

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

func TestRestartPolicy(t *testing.T) {
	tests := []struct {
		cond     api.RestartCondition
		state    api.TaskState
		exit     int32
		replaced bool
	}{
		{api.RestartAny, api.TaskComplete, 0, true},
		{api.RestartAny, api.TaskFailed, 1, true},
		{api.RestartAny, api.TaskShutdown, 0, true}, // stopped without being asked
		{api.RestartOnFailure, api.TaskComplete, 0, false},
		{api.RestartOnFailure, api.TaskComplete, 3, true},
		{api.RestartOnFailure, api.TaskFailed, 137, true},
		{api.RestartOnFailure, api.TaskRejected, 0, true},
		{api.RestartOnFailure, api.TaskShutdown, 0, false},
		{api.RestartNone, api.TaskFailed, 1, false},
		{api.RestartNone, api.TaskComplete, 0, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/exit%d", tt.cond, tt.state, tt.exit), func(t *testing.T) {
			h := newHarness(t)
			h.addNode("n1", nil)
			spec := replicated("job", 1)
			spec.RestartPolicy = api.RestartPolicy{Condition: tt.cond}
			svc := h.createService(spec)
			first := live(h.settle(svc, 1), svc.ID)[0]
			h.report(first, tt.state, tt.exit)

			if tt.replaced {
				v := h.settle(svc, 1)
				next := live(v, svc.ID)[0]
				ended := v.Task(first.ID)
				if next.ID == first.ID || next.Slot != 1 || next.Attempt != 1 || ended.DesiredState != api.TaskShutdown {
					t.Fatalf("want a new task in slot 1 (attempt 1) and the ended one told to shut down\n%s", dump(v))
				}
				return
			}
			h.barrier()
			v := h.state.Read()
			ts := v.TasksByService(svc.ID)
			if len(ts) != 1 || ts[0].ID != first.ID || ts[0].DesiredState != api.TaskRunning || ts[0].Status.State != tt.state {
				t.Fatalf("want the ended task left alone as the slot's only task\n%s", dump(v))
			}
		})
	}
}

func TestRestartBackoffGrows(t *testing.T) {
	const delay = time.Second
	h := newHarness(t)
	h.addNode("n1", nil)
	spec := replicated("crashy", 1)
	spec.RestartPolicy = api.RestartPolicy{Condition: api.RestartOnFailure, Delay: api.Duration(delay)}
	svc := h.createService(spec)

	// Doubling per consecutive failure, capped at 10 × delay.
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i, w := range want {
		w *= delay
		task := live(h.settle(svc, 1), svc.ID)[0]
		h.report(task, api.TaskFailed, 1)
		failedAt := h.clock.Now()
		v := h.waitFor(fmt.Sprintf("replacement %d", i+1), func(v *raftstore.View) string {
			if ts := live(v, svc.ID); len(ts) != 1 || ts[0].ID == task.ID {
				return "no replacement"
			}
			return ""
		})
		next := live(v, svc.ID)[0]
		if got := next.NotBefore.Sub(failedAt); got != w {
			t.Fatalf("failure %d: replacement not before +%s, want +%s", i+1, got, w)
		}
		if next.Status.State != api.TaskPending || !strings.Contains(next.Status.PendingReason, "restart delay") {
			t.Fatalf("failure %d: replacement %s with reason %q, want pending for the restart delay", i+1, next.Status.State, next.Status.PendingReason)
		}

		// Held until its time, then placed.
		h.clock.Advance(w - time.Millisecond)
		h.barrier()
		if cur := h.state.Read().Task(next.ID); cur.Status.State != api.TaskPending {
			t.Fatalf("failure %d: replacement is %s 1ms before its restart delay ends", i+1, cur.Status.State)
		}
		h.clock.Advance(time.Millisecond)
		h.waitFor("replacement placed after its delay", func(v *raftstore.View) string {
			if s := v.Task(next.ID).Status.State; s != api.TaskAssigned {
				return s.String()
			}
			return ""
		})
	}

	// A clean exit breaks the run of failures: on-failure leaves it, and
	// the slot stays done.
	task := live(h.settle(svc, 1), svc.ID)[0]
	h.report(task, api.TaskComplete, 0)
	h.barrier()
	if n := len(live(h.state.Read(), svc.ID)); n != 0 {
		t.Fatalf("%d live tasks after a clean exit under on-failure, want 0", n)
	}
}

func TestRestartMaxAttempts(t *testing.T) {
	tests := []struct {
		name   string
		window time.Duration
		apart  time.Duration // between failures
		// restarts is how many failures in a row are replaced before the
		// policy gives up (-1: all of them).
		restarts int
	}{
		{name: "no window", restarts: 2},
		{name: "failures within the window", window: 10 * time.Second, apart: time.Second, restarts: 2},
		{name: "failures spread beyond the window", window: 10 * time.Second, apart: 11 * time.Second, restarts: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.addNode("n1", nil)
			spec := replicated("crashy", 1)
			spec.RestartPolicy = api.RestartPolicy{Condition: api.RestartAny, MaxAttempts: 2, Window: api.Duration(tt.window)}
			svc := h.createService(spec)
			for i := 0; i < 5; i++ {
				task := live(h.settle(svc, 1), svc.ID)[0]
				h.clock.Advance(tt.apart)
				h.report(task, api.TaskFailed, 1)
				if tt.restarts >= 0 && i == tt.restarts {
					h.barrier()
					if n := len(live(h.state.Read(), svc.ID)); n != 0 {
						t.Fatalf("failure %d replaced, want the policy to give up after %d restarts\n%s", i+1, tt.restarts, dump(h.state.Read()))
					}
					return
				}
				h.waitFor(fmt.Sprintf("replacement %d", i+1), func(v *raftstore.View) string {
					if len(live(v, svc.ID)) != 1 {
						return "no replacement"
					}
					return ""
				})
			}
			if tt.restarts >= 0 {
				t.Fatalf("the policy never gave up")
			}
		})
	}
}
