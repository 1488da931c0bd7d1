package orchestrator

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

func TestScaleUpCreatesSlots(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", nil)
	svc := h.createService(replicated("web", 3))
	v := h.settle(svc, 3)
	ts := live(v, svc.ID)
	if got := slotsOf(ts); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("slots = %v, want [1 2 3]", got)
	}
	for _, task := range ts {
		spec := v.ServiceSpec(task.ServiceID, task.SpecVersion)
		if task.SpecVersion != svc.SpecVersion || spec == nil || spec.Image != "busybox:1" || task.DesiredState != api.TaskRunning ||
			task.ServiceName != "web" || task.NodeID != "n1" {
			t.Errorf("task %+v (spec %+v): want spec version %d, image busybox:1, desired running, on n1", task, spec, svc.SpecVersion)
		}
		if task.HasSpec() {
			t.Errorf("task of slot %d is stored with a copy of its spec", task.Slot)
		}
	}

	spec := svc.Spec
	spec.Replicas = 5
	h.updateService(svc.ID, spec)
	v = h.settle(svc, 5)
	if got := slotsOf(live(v, svc.ID)); !slices.Equal(got, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("after scale up: slots = %v, want [1 2 3 4 5]", got)
	}
	// The tasks that ran before the scale change were not replaced (a
	// replica count is not a change of what a task runs).
	for _, old := range ts {
		if cur := v.Task(old.ID); cur == nil || cur.DesiredState != api.TaskRunning {
			t.Errorf("task of slot %d was replaced by a scale change", old.Slot)
		}
	}
}

func TestScaleDown(t *testing.T) {
	tests := []struct {
		name string
		// setup leaves the service running with its tasks placed.
		setup     func(h *harness) *api.Service
		scaleTo   uint64
		wantSlots []uint64
	}{
		{
			name: "highest slots go first",
			setup: func(h *harness) *api.Service {
				h.addNode("n1", nil)
				svc := h.createService(replicated("web", 5))
				h.settle(svc, 5)
				return svc
			},
			scaleTo:   2,
			wantSlots: []uint64{1, 2},
		},
		{
			name: "busiest node goes first",
			setup: func(h *harness) *api.Service {
				h.addNode("n1", nil)
				svc := h.createService(replicated("web", 3))
				h.settle(svc, 3) // slots 1-3 on n1
				h.addNode("n2", nil)
				spec := svc.Spec
				spec.Replicas = 5
				h.updateService(svc.ID, spec)
				v := h.settle(svc, 5)
				// Spread puts the two new slots on the empty node.
				for _, task := range live(v, svc.ID) {
					if want := map[bool]string{true: "n1", false: "n2"}[task.Slot <= 3]; task.NodeID != want {
						h.t.Fatalf("slot %d on %s, want %s\n%s", task.Slot, task.NodeID, want, dump(v))
					}
				}
				return svc
			},
			// n1 runs 3, n2 runs 2: slot 3 (n1's third) then slot 5 (the
			// higher of n1's and n2's second) go.
			scaleTo:   3,
			wantSlots: []uint64{1, 2, 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			svc := tt.setup(h)
			spec := h.state.Read().Service(svc.ID).Spec
			spec.Replicas = tt.scaleTo
			h.updateService(svc.ID, spec)
			v := h.settle(svc, int(tt.scaleTo))
			if got := slotsOf(live(v, svc.ID)); !slices.Equal(got, tt.wantSlots) {
				t.Fatalf("slots = %v, want %v\n%s", got, tt.wantSlots, dump(v))
			}
			for _, task := range v.TasksByService(svc.ID) {
				if !slices.Contains(tt.wantSlots, task.Slot) && (task.DesiredState != api.TaskShutdown || task.Status.State != api.TaskShutdown) {
					t.Errorf("task of removed slot %d: desired %s, state %s; want both shutdown", task.Slot, task.DesiredState, task.Status.State)
				}
			}
		})
	}
}

func TestPendingUntilNodeAppears(t *testing.T) {
	h := newHarness(t)
	spec := replicated("web", 2)
	spec.Resources.Reservations = api.Resources{NanoCPUs: 3e9} // one per 4-CPU node
	svc := h.createService(spec)
	h.waitFor("two pending tasks with a reason", func(v *raftstore.View) string {
		ts := live(v, svc.ID)
		if n := count(ts, func(t *api.Task) bool { return t.Status.State == api.TaskPending && t.Status.PendingReason != "" }); n != 2 {
			return fmt.Sprintf("%d pending with a reason", n)
		}
		return ""
	})

	h.addNode("n1", nil)
	v := h.waitFor("one task placed, one pending", func(v *raftstore.View) string {
		ts := live(v, svc.ID)
		if a, p := count(ts, inState(api.TaskAssigned)), count(ts, inState(api.TaskPending)); a != 1 || p != 1 {
			return fmt.Sprintf("%d assigned, %d pending", a, p)
		}
		return ""
	})
	for _, task := range live(v, svc.ID) {
		if task.Status.State == api.TaskPending && task.Status.PendingReason == "" {
			t.Errorf("pending task of slot %d has no reason", task.Slot)
		}
	}

	h.addNode("n2", nil)
	v = h.settle(svc, 2)
	if nodes := []string{live(v, svc.ID)[0].NodeID, live(v, svc.ID)[1].NodeID}; nodes[0] == nodes[1] {
		t.Fatalf("both tasks on %s, want one per node", nodes[0])
	}

	// Capacity freed by a removed service is used at once.
	other := h.createService(func() api.ServiceSpec { s := spec; s.Name = "other"; s.Replicas = 1; return s }())
	h.waitFor("other pending", func(v *raftstore.View) string {
		if n := count(live(v, other.ID), inState(api.TaskPending)); n != 1 {
			return fmt.Sprintf("%d pending", n)
		}
		return ""
	})
	h.do(raftstore.RemoveService{ID: svc.ID, At: h.clock.Now()})
	h.waitFor("other placed, web's tasks gone", func(v *raftstore.View) string {
		h.runAll(v)
		if n := count(live(v, other.ID), inState(api.TaskRunning)); n != 1 {
			return fmt.Sprintf("other: %d running", n)
		}
		if n := len(v.TasksByService(svc.ID)); n != 0 {
			return fmt.Sprintf("%d tasks of the removed service left", n)
		}
		return ""
	})
}

func TestReaperKeepsHistoryPerSlot(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", nil)
	svc := h.createService(replicated("crashy", 1)) // restart any, no delay
	for i := range 8 {
		v := h.settle(svc, 1)
		h.report(live(v, svc.ID)[0], api.TaskFailed, 1)
		h.waitFor(fmt.Sprintf("replacement %d", i+1), func(v *raftstore.View) string {
			if len(live(v, svc.ID)) != 1 {
				return "no live task"
			}
			return ""
		})
	}
	h.settle(svc, 1)
	h.barrier()
	v := h.state.Read()
	all := v.TasksByService(svc.ID)
	if len(all) != historyPerGroup+1 {
		t.Fatalf("%d tasks in slot 1, want %d ended + 1 running\n%s", len(all), historyPerGroup, dump(v))
	}
	if ts := live(v, svc.ID); len(ts) != 1 || ts[0].Attempt != 8 {
		t.Errorf("live tasks %v: want one, with attempt 8\n%s", ts, dump(v))
	}
}

// racingApplier is a fake at the Applier seam: before it forwards the
// first command that assigns tasks, it applies race (a change the
// orchestrator has not seen), so that the FSM refuses the assignment.
type racingApplier struct {
	raftstore.Applier
	race   raftstore.Command
	raced  bool         // only the orchestrator's goroutine calls Apply
	passes atomic.Int32 // commands forwarded after the race
}

func (a *racingApplier) Apply(ctx context.Context, cmd raftstore.Command) (raftstore.Response, error) {
	if a.raced {
		a.passes.Add(1)
	} else if assigns(cmd) {
		a.raced = true
		if _, err := a.Applier.Apply(ctx, a.race); err != nil {
			return raftstore.Response{}, err
		}
	}
	return a.Applier.Apply(ctx, cmd)
}

func assigns(cmd raftstore.Command) bool {
	switch c := cmd.(type) {
	case raftstore.AssignTasks:
		return len(c.Assignments) > 0
	case raftstore.Batch:
		for _, sub := range c.Commands {
			if assigns(sub) {
				return true
			}
		}
	}
	return false
}

func TestRefusedAssignmentIsRetried(t *testing.T) {
	state := raftstore.NewState()
	local := raftstore.NewLocalApplier(state)
	h := &harness{t: t, state: state, apply: local, clock: newFakeClock()}
	h.addNode("n1", nil)
	racer := &racingApplier{Applier: local, race: raftstore.UpdateNode{ID: "n1", Availability: api.AvailabilityPause}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- New(state, racer, Options{Logger: testLogger(t), Clock: h.clock}).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	svc := h.createService(replicated("web", 1))
	h.waitFor("the node paused by the race", func(v *raftstore.View) string {
		if v.Node("n1").Availability != api.AvailabilityPause {
			return "not yet"
		}
		return ""
	})
	h.barrier()
	v := h.state.Read()
	if ts := live(v, svc.ID); len(ts) != 1 || ts[0].NodeID != "" {
		t.Fatalf("want the one task unassigned after the refusal\n%s", dump(v))
	}
	if n := racer.passes.Load(); n > 4 {
		t.Fatalf("%d commands after the refusal: the loop spins", n)
	}

	h.setAvailability("n1", api.AvailabilityActive)
	h.settle(svc, 1)
}
