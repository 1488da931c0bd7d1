package ctl

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// TestMirrorFillsTaskSpecs: a mirror watching with specs_once gives every
// task the spec of its version from the spec changes its stream sent, in
// the snapshot and after it; a task that comes with its own spec (a
// manager without specs_once) keeps it; a new stream's resent spec fills
// the tasks that follow.
func TestMirrorFillsTaskSpecs(t *testing.T) {
	v1 := &shoalpb.ServiceSpec{Name: "web", Image: "busybox:1.36"}
	v2 := &shoalpb.ServiceSpec{Name: "web", Image: "busybox:1.37"}
	own := &shoalpb.ServiceSpec{Name: "web", Image: "busybox:own"}
	specChange := func(index, version uint64, s *shoalpb.ServiceSpec) *shoalpb.WatchChange {
		return &shoalpb.WatchChange{Index: index, Kind: "spec", Action: "current",
			Spec: &shoalpb.TaskSpec{ServiceId: "svc", Version: version, Spec: s}}
	}
	task := func(index uint64, action, id string, version uint64) *shoalpb.WatchChange {
		return &shoalpb.WatchChange{Index: index, Kind: "task", Action: action,
			Task: &shoalpb.Task{Id: id, ServiceId: "svc", ServiceName: "web", SpecVersion: version, DesiredState: "running"}}
	}
	m := newMirror()
	m.newStream()
	m.apply(&shoalpb.WatchMessage{Index: 10, Snapshot: true, SnapshotDone: true, Changes: []*shoalpb.WatchChange{
		specChange(10, 1, v1), task(10, "current", "t1", 1), task(10, "current", "t2", 1)}})
	m.apply(&shoalpb.WatchMessage{Index: 12, Changes: []*shoalpb.WatchChange{
		specChange(11, 2, v2), task(11, "create", "t3", 2), task(12, "update", "t1", 1)}})
	withOwn := task(13, "create", "t4", 3)
	withOwn.Task.Spec = own
	m.apply(&shoalpb.WatchMessage{Index: 13, Changes: []*shoalpb.WatchChange{withOwn}})
	// A resumed stream sends the specs again before the tasks that run them.
	m.newStream()
	m.apply(&shoalpb.WatchMessage{Index: 14, Changes: []*shoalpb.WatchChange{
		specChange(14, 2, v2), task(14, "update", "t3", 2)}})

	want := map[string]*shoalpb.ServiceSpec{"t1": v1, "t2": v1, "t3": v2, "t4": own}
	cl := m.cluster()
	if len(cl.tasks) != len(want) {
		t.Fatalf("the mirror holds %d tasks, want %d", len(cl.tasks), len(want))
	}
	for _, task := range cl.tasks {
		if got := task.GetSpec(); !proto.Equal(got, want[task.GetId()]) {
			t.Errorf("task %s: spec %v, want %v", task.GetId(), got, want[task.GetId()])
		}
	}
	if n := len(m.specs); n != 1 {
		t.Errorf("the mirror holds %d specs after a new stream sent one, want 1", n)
	}
}
