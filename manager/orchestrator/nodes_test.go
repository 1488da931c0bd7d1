package orchestrator

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

func TestNodeLostOrphansAndReplaces(t *testing.T) {
	tests := []struct {
		name string
		lose func(h *harness, id string)
	}{
		{"down", func(h *harness, id string) { h.setNodeStatus(id, api.NodeDown) }},
		{"removed", func(h *harness, id string) { h.do(raftstore.RemoveNode{ID: id, At: h.clock.Now()}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.addNode("n1", nil)
			h.addNode("n2", nil)
			spec := replicated("web", 2)
			// A long restart delay, which a lost node must not wait for.
			spec.RestartPolicy = api.RestartPolicy{Condition: api.RestartAny, Delay: api.Duration(time.Hour)}
			svc := h.createService(spec)
			v := h.settle(svc, 2)
			var lost *api.Task
			for _, task := range live(v, svc.ID) {
				if task.NodeID == "n1" {
					lost = task
				}
			}
			if lost == nil {
				t.Fatalf("no task on n1\n%s", dump(v))
			}

			tt.lose(h, "n1")
			h.waitFor("the lost node's task orphaned", func(v *raftstore.View) string {
				if s := v.Task(lost.ID).Status.State; s != api.TaskOrphaned {
					return s.String()
				}
				return ""
			})
			v = h.settle(svc, 2) // the clock does not move
			if old := v.Task(lost.ID); old.Status.State != api.TaskOrphaned || old.DesiredState != api.TaskShutdown {
				t.Fatalf("task on the lost node: %s, desired %s; want orphaned, shutdown", old.Status.State, old.DesiredState)
			}
			for _, task := range live(v, svc.ID) {
				if task.NodeID != "n2" {
					t.Fatalf("live task of slot %d on %s, want n2", task.Slot, task.NodeID)
				}
				if task.Slot == lost.Slot && !task.NotBefore.IsZero() {
					t.Fatalf("replacement held until %s, want no restart delay", task.NotBefore)
				}
			}
			if got := slotsOf(live(v, svc.ID)); got[0] != 1 || got[1] != 2 {
				t.Fatalf("slots %v, want [1 2]", got)
			}
		})
	}
}

func TestDrainReplacesThenStops(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", nil)
	svc := h.createService(replicated("web", 1))
	old := live(h.settle(svc, 1), svc.ID)[0]
	h.addNode("n2", nil)

	h.setAvailability("n1", api.AvailabilityDrain)
	v := h.waitFor("a replacement on n2", func(v *raftstore.View) string {
		for _, task := range live(v, svc.ID) {
			if task.NodeID == "n2" && task.Status.State == api.TaskAssigned {
				return ""
			}
		}
		return "none"
	})
	// The old task keeps running until its replacement does.
	if cur := v.Task(old.ID); cur.DesiredState != api.TaskRunning || cur.Status.State != api.TaskRunning {
		t.Fatalf("old task %s, desired %s before its replacement runs; want running, running", cur.Status.State, cur.DesiredState)
	}
	v = h.settle(svc, 1)
	if cur := v.Task(old.ID); cur.DesiredState != api.TaskShutdown || cur.Status.State != api.TaskShutdown {
		t.Fatalf("old task %s, desired %s; want shutdown, shutdown", cur.Status.State, cur.DesiredState)
	}
	if ts := live(v, svc.ID); ts[0].NodeID != "n2" || ts[0].Slot != old.Slot {
		t.Fatalf("live task on %s slot %d, want n2 slot %d", ts[0].NodeID, ts[0].Slot, old.Slot)
	}
}

func TestPauseTakesNoNewTasks(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", nil)
	h.addNode("n2", nil)
	first := h.createService(replicated("first", 2))
	v := h.settle(first, 2)
	if a, b := live(v, first.ID)[0].NodeID, live(v, first.ID)[1].NodeID; a == b {
		t.Fatalf("both tasks of first on %s, want one per node", a)
	}

	h.setAvailability("n1", api.AvailabilityPause)
	second := h.createService(replicated("second", 3))
	v = h.settle(second, 3)
	for _, task := range live(v, second.ID) {
		if task.NodeID != "n2" {
			t.Fatalf("task of slot %d placed on paused %s", task.Slot, task.NodeID)
		}
	}
	// What ran on the paused node keeps running.
	if got := count(live(v, first.ID), func(t *api.Task) bool { return t.NodeID == "n1" && t.Status.State == api.TaskRunning }); got != 1 {
		t.Fatalf("%d tasks of first running on paused n1, want 1\n%s", got, dump(v))
	}
}

func TestGlobalFollowsNodes(t *testing.T) {
	h := newHarness(t)
	zoneA := map[string]string{"zone": "a"}
	h.addNode("n1", zoneA)
	h.addNode("n2", zoneA)
	h.addNode("n3", map[string]string{"zone": "b"})
	spec := replicated("agent", 0)
	spec.Mode = api.ModeGlobal
	spec.Placement.Constraints = []string{"node.labels.zone==a"}
	svc := h.createService(spec)

	expect := func(step string, nodes ...string) {
		t.Helper()
		h.waitFor(step, func(v *raftstore.View) string {
			h.runAll(v)
			var got []string
			for _, task := range live(v, svc.ID) {
				if task.Status.State != api.TaskRunning {
					return fmt.Sprintf("task on %s is %s", task.NodeID, task.Status.State)
				}
				got = append(got, task.NodeID)
			}
			slices.Sort(got)
			if fmt.Sprint(got) != fmt.Sprint(nodes) {
				return fmt.Sprintf("running on %v, want %v", got, nodes)
			}
			return ""
		})
	}
	expect("tasks on the zone a nodes", "n1", "n2")

	h.addNode("n4", zoneA)
	expect("a task on the joining node", "n1", "n2", "n4")

	h.setAvailability("n1", api.AvailabilityDrain)
	expect("no task on the drained node", "n2", "n4")

	h.do(raftstore.UpdateNode{ID: "n2", LabelRm: []string{"zone"}, At: h.clock.Now()})
	expect("no task where the label went", "n4")

	h.setAvailability("n3", api.AvailabilityPause)
	h.do(raftstore.UpdateNode{ID: "n3", LabelAdd: zoneA, At: h.clock.Now()})
	h.barrier()
	expect("no new task on a paused node", "n4")
	h.setAvailability("n3", api.AvailabilityActive)
	expect("a task once the node is active", "n3", "n4")

	h.setNodeStatus("n4", api.NodeDown)
	expect("the down node's task orphaned", "n3")
	h.setNodeStatus("n4", api.NodeReady)
	expect("a new task on the node back up", "n3", "n4")

	h.do(raftstore.RemoveNode{ID: "n4", At: h.clock.Now()})
	expect("no task for the removed node", "n3")
	h.waitFor("the removed node's task history deleted", func(v *raftstore.View) string {
		if n := count(v.TasksByService(svc.ID), func(t *api.Task) bool { return t.NodeID == "n4" }); n > 0 {
			return fmt.Sprintf("%d tasks on n4", n)
		}
		return ""
	})
}

func TestDrainReplacementBacksOff(t *testing.T) {
	const delay = time.Second
	h := newHarness(t)
	h.addNode("n1", nil)
	spec := replicated("web", 1)
	spec.RestartPolicy.Delay = api.Duration(delay)
	svc := h.createService(spec)
	old := live(h.settle(svc, 1), svc.ID)[0]
	h.addNode("n2", nil)
	h.setAvailability("n1", api.AvailabilityDrain)

	// Each replacement on n2 fails at once; the next one waits longer.
	var prev string
	for i, want := range []time.Duration{0, delay, 2 * delay, 4 * delay} {
		v := h.waitFor(fmt.Sprintf("replacement %d", i+1), func(v *raftstore.View) string {
			for _, task := range live(v, svc.ID) {
				if task.NodeID != "n1" && task.ID != prev {
					return ""
				}
			}
			return "none"
		})
		var next *api.Task
		for _, task := range live(v, svc.ID) {
			if task.NodeID != "n1" {
				next = task
			}
		}
		if got := next.NotBefore.Sub(h.clock.Now()); want > 0 && got != want || want == 0 && !next.NotBefore.IsZero() {
			t.Fatalf("replacement %d held for %s, want %s", i+1, got, want)
		}
		h.clock.Advance(want)
		v = h.waitFor("replacement assigned", func(v *raftstore.View) string {
			if s := v.Task(next.ID).Status.State; s != api.TaskAssigned {
				return s.String()
			}
			return ""
		})
		if cur := v.Task(old.ID); cur.DesiredState != api.TaskRunning || cur.Status.State != api.TaskRunning {
			t.Fatalf("old task %s, desired %s while no replacement runs", cur.Status.State, cur.DesiredState)
		}
		h.report(v.Task(next.ID), api.TaskFailed, 1)
		prev = next.ID
	}
}
