package orchestrator

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

const rolloutReplicas = 4

// rolloutState classifies the slots of svc during an update to version
// want: done (a current task runs) and in flight (a current task that does
// not run yet).
func rolloutState(v *raftstore.View, svcID string, want uint64) (done, inflight []uint64) {
	for slot := uint64(1); slot <= rolloutReplicas; slot++ {
		var cur *api.Task
		for _, t := range live(v, svcID) {
			if t.Slot == slot && t.SpecVersion == want {
				cur = t
			}
		}
		switch {
		case cur == nil:
		case cur.Status.State == api.TaskRunning:
			done = append(done, slot)
		default:
			inflight = append(inflight, slot)
		}
	}
	return done, inflight
}

// checkStopFirst fails if a current task of a slot holds a node while an
// older task of the same slot still does.
func checkStopFirst(t *testing.T, v *raftstore.View, svcID string, want uint64) {
	t.Helper()
	for _, n := range v.TasksByService(svcID) {
		if n.SpecVersion != want || !n.Status.State.Active() {
			continue
		}
		for _, o := range v.TasksByService(svcID) {
			if o.Slot == n.Slot && o.SpecVersion < want && o.Status.State.Active() {
				t.Fatalf("slot %d: new task %s while the old one is %s\n%s", n.Slot, n.Status.State, o.Status.State, dump(v))
			}
		}
	}
}

// slotWatch records every view in which a slot of a service has more than
// one task that should run and has not ended.
type slotWatch struct {
	mu         sync.Mutex
	violations []string
}

func (h *harness) watchSlots(svcID string) *slotWatch {
	w := &slotWatch{}
	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		for {
			changed := h.state.Changed()
			v := h.state.Read()
			perSlot := make(map[uint64]int)
			for _, t := range live(v, svcID) {
				perSlot[t.Slot]++
				if perSlot[t.Slot] > 1 {
					w.mu.Lock()
					w.violations = append(w.violations, fmt.Sprintf("index %d: slot %d has %d live tasks", v.Index(), t.Slot, perSlot[t.Slot]))
					w.mu.Unlock()
				}
			}
			select {
			case <-changed:
			case <-stop:
				return
			}
		}
	}()
	h.t.Cleanup(func() { close(stop); <-done })
	return w
}

func (w *slotWatch) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.violations) > 0 {
		t.Fatalf("duplicate live tasks seen:\n%s", strings.Join(w.violations, "\n"))
	}
}

// stepRollout drives a rollout one observation at a time: after each
// barrier it checks the batch in flight, then lets the fake agents act on
// what they see. midway, if set, runs once when done reaches its first
// argument.
func stepRollout(t *testing.T, h *harness, svc *api.Service, parallelism int, order string, midway func(done int)) {
	t.Helper()
	batch := parallelism
	if batch == 0 {
		batch = rolloutReplicas
	}
	called := false
	for round := 0; round < 40; round++ {
		h.barrier()
		v := h.state.Read()
		done, inflight := rolloutState(v, svc.ID, svc.SpecVersion)
		if len(done) == rolloutReplicas && len(live(v, svc.ID)) == rolloutReplicas {
			return
		}
		if want := min(batch, rolloutReplicas-len(done)); len(inflight) != want && len(done) < rolloutReplicas {
			t.Fatalf("round %d: %d slots in flight (%v), want %d\n%s", round, len(inflight), inflight, want, dump(v))
		}
		if order == orderStartFirst {
			for _, slot := range inflight {
				if n := count(live(v, svc.ID), func(t *api.Task) bool { return t.Slot == slot }); n != 2 {
					t.Fatalf("start-first: slot %d has %d live tasks while its update runs, want 2\n%s", slot, n, dump(v))
				}
			}
		} else {
			checkStopFirst(t, v, svc.ID, svc.SpecVersion)
		}
		if midway != nil && !called && len(inflight) > 0 && len(done) > 0 {
			called = true
			midway(len(done))
			continue
		}
		h.runAll(v)
	}
	t.Fatalf("rollout did not finish\n%s", dump(h.state.Read()))
}

func updateImage(h *harness, svc *api.Service, parallelism uint64, order string) *api.Service {
	spec := h.state.Read().Service(svc.ID).Spec
	spec.Image = "busybox:2"
	spec.UpdateConfig = api.UpdateConfig{Parallelism: parallelism, Order: order}
	return h.updateService(svc.ID, spec)
}

func TestRolloutFollowsUpdateConfig(t *testing.T) {
	tests := []struct {
		parallelism uint64
		order       string
	}{
		{1, ""}, {3, ""}, {0, ""}, {1, orderStartFirst}, {2, orderStartFirst},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("parallelism%d/%s", tt.parallelism, tt.order), func(t *testing.T) {
			h := newHarness(t)
			h.addNode("n1", nil)
			h.addNode("n2", nil)
			svc := h.createService(replicated("web", rolloutReplicas))
			before := live(h.settle(svc, rolloutReplicas), svc.ID)
			var watch *slotWatch
			if tt.order != orderStartFirst {
				watch = h.watchSlots(svc.ID)
			}
			svc = updateImage(h, svc, tt.parallelism, tt.order)
			stepRollout(t, h, svc, int(tt.parallelism), tt.order, nil)

			v := h.settle(svc, rolloutReplicas)
			if watch != nil {
				watch.check(t)
			}
			for _, task := range live(v, svc.ID) {
				if spec := v.ServiceSpec(task.ServiceID, task.SpecVersion); task.SpecVersion != svc.SpecVersion || spec.Image != "busybox:2" {
					t.Errorf("slot %d runs version %d (%s)", task.Slot, task.SpecVersion, spec.Image)
				}
			}
			for _, old := range before {
				if cur := v.Task(old.ID); cur.DesiredState != api.TaskShutdown || cur.Status.State != api.TaskShutdown {
					t.Errorf("old task of slot %d: %s, desired %s", old.Slot, cur.Status.State, cur.DesiredState)
				}
			}
		})
	}
}

func TestRolloutResumesAfterLeaderChange(t *testing.T) {
	for _, parallelism := range []uint64{1, 2} {
		t.Run(fmt.Sprintf("parallelism%d", parallelism), func(t *testing.T) {
			h := newHarness(t)
			h.addNode("n1", nil)
			h.addNode("n2", nil)
			svc := h.createService(replicated("web", rolloutReplicas))
			h.settle(svc, rolloutReplicas)
			watch := h.watchSlots(svc.ID)
			svc = updateImage(h, svc, parallelism, "")

			stepRollout(t, h, svc, int(parallelism), "", func(int) {
				// Leadership moves while a batch is in flight: the old
				// leader stops, the agents carry on (the old tasks stop),
				// then the new leader starts on the same state.
				h.stopOrchestrator()
				v := h.state.Read()
				stopping := 0
				for _, task := range v.TasksByService(svc.ID) {
					if task.DesiredState > api.TaskRunning && task.Status.State.Active() {
						h.report(task, api.TaskShutdown, 0)
						stopping++
					}
				}
				if stopping == 0 {
					t.Fatalf("no old task was stopping when the leader changed\n%s", dump(v))
				}
				h.startOrchestrator()
			})

			v := h.settle(svc, rolloutReplicas)
			watch.check(t)
			for slot := uint64(1); slot <= rolloutReplicas; slot++ {
				var ts []*api.Task
				for _, task := range v.TasksByService(svc.ID) {
					if task.Slot == slot {
						ts = append(ts, task)
					}
				}
				// One old task, stopped, and one new task, running: nothing
				// was created twice.
				if len(ts) != 2 || count(ts, func(t *api.Task) bool {
					return t.SpecVersion == svc.SpecVersion && t.Status.State == api.TaskRunning && t.DesiredState == api.TaskRunning
				}) != 1 {
					t.Fatalf("slot %d: %d tasks, want the old one and one running new one\n%s", slot, len(ts), dump(v))
				}
			}
		})
	}
}

// TestOldSpecVersionsLastAsLongAsTheirTasks: after updates, the tasks kept
// as history still read the spec they ran; once the reaper has trimmed the
// last task of a version, the store drops that version.
func TestOldSpecVersionsLastAsLongAsTheirTasks(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", nil)
	svc := h.createService(replicated("web", 2))
	h.settle(svc, 2)
	for i := 2; i <= historyPerGroup+3; i++ {
		spec := h.state.Read().Service(svc.ID).Spec
		spec.Image = fmt.Sprintf("busybox:%d", i)
		svc = h.updateService(svc.ID, spec)
		v := h.waitFor(fmt.Sprintf("2 tasks running version %d", svc.SpecVersion), func(v *raftstore.View) string {
			h.runAll(v)
			ts := live(v, svc.ID)
			n := count(ts, func(t *api.Task) bool { return t.Status.State == api.TaskRunning && t.SpecVersion == svc.SpecVersion })
			if n != 2 || len(ts) != 2 {
				return fmt.Sprintf("%d live, %d running the new version", len(ts), n)
			}
			return ""
		})
		for _, task := range v.TasksByService(svc.ID) {
			spec := v.ServiceSpec(task.ServiceID, task.SpecVersion)
			want := fmt.Sprintf("busybox:%d", task.SpecVersion)
			if task.SpecVersion == 1 {
				want = "busybox:1"
			}
			if spec == nil || spec.Image != want {
				t.Fatalf("after update %d: task %s (v%d, %s) reads %+v, want image %s",
					i, task.ID, task.SpecVersion, task.Status.State, spec, want)
			}
		}
	}
	// Each slot kept its last historyPerGroup ended tasks: those of
	// version 1 and 2 are gone, and so are their specs.
	v := h.waitFor("versions 1 and 2 collected", func(v *raftstore.View) string {
		for _, version := range []uint64{1, 2} {
			if v.ServiceSpec(svc.ID, version) != nil {
				return fmt.Sprintf("version %d still stored", version)
			}
		}
		return ""
	})
	for _, task := range v.TasksByService(svc.ID) {
		if task.SpecVersion <= 2 {
			t.Errorf("task %s of version %d is still there", task.ID, task.SpecVersion)
		}
	}
	if v.ServiceSpec(svc.ID, svc.SpecVersion-1) == nil || v.ServiceSpec(svc.ID, svc.SpecVersion) == nil {
		t.Error("the current or previous version is gone")
	}
}
