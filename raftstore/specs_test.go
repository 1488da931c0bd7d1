package raftstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore/commandpb"
)

// storedVersions lists the spec versions the store holds for a service.
func storedVersions(v *View, serviceID string) []uint64 {
	var out []uint64
	for _, r := range v.serviceSpecs() {
		if r.ServiceID == serviceID {
			out = append(out, r.Version)
		}
	}
	slices.Sort(out)
	return out
}

func mustApply(t *testing.T, s *State, cmd Command) any {
	t.Helper()
	_, v, err := s.apply(0, cmd)
	if err != nil {
		t.Fatalf("apply %T: %v", cmd, err)
	}
	return v
}

func withImage(svc *api.Service, image string) api.ServiceSpec {
	spec := *svc.Spec.Clone()
	spec.Image = image
	return spec
}

// TestSpecVersionLifecycle follows a service through updates and its
// removal: each version stays readable while the service (current or
// previous spec) or a task refers to it, and goes in the command that
// drops the last reference.
func TestSpecVersionLifecycle(t *testing.T) {
	s := NewState()
	web := testService("svc-web", "web", 2)
	mustApply(t, s, CreateService{Service: web})
	mustApply(t, s, WriteTasks{Create: []*api.Task{testTask("t1", web, 1), testTask("t2", web, 2)}, At: t0})
	v := s.Read()
	if got := v.ServiceSpec(web.ID, 1); got == nil || got.Image != "busybox" || got.Env[0] != "A=1" {
		t.Fatalf("version 1 = %+v", got)
	}
	if task := v.Task("t1"); task.HasSpec() {
		t.Fatalf("task stored with a copy of its spec: %+v", task.Spec)
	}

	steps := []struct {
		name string
		cmd  Command
		want []uint64
	}{
		{"update to 2", UpdateService{ID: web.ID, Spec: withImage(web, "busybox:2"), At: t0}, []uint64{1, 2}},
		{"a task of 2", WriteTasks{Create: []*api.Task{versioned(testTask("t3", web, 3), 2)}, At: t0}, []uint64{1, 2}},
		{"update to 3", UpdateService{ID: web.ID, Spec: withImage(web, "busybox:3"), At: t0}, []uint64{1, 2, 3}},
		// 2 is no longer current or previous, but t3 runs it.
		{"update to 4", UpdateService{ID: web.ID, Spec: withImage(web, "busybox:4"), At: t0}, []uint64{1, 2, 3, 4}},
		{"delete t1", WriteTasks{Delete: []string{"t1"}, At: t0}, []uint64{1, 2, 3, 4}},
		{"delete t2", WriteTasks{Delete: []string{"t2"}, At: t0}, []uint64{2, 3, 4}},
		// A removed service keeps only what its tasks run.
		{"remove", RemoveService{ID: web.ID, At: t0}, []uint64{2}},
		{"delete t3", WriteTasks{Delete: []string{"t3"}, At: t0}, nil},
	}
	for _, st := range steps {
		mustApply(t, s, st.cmd)
		if got := storedVersions(s.Read(), web.ID); !slices.Equal(got, st.want) {
			t.Fatalf("after %s: versions %v, want %v", st.name, got, st.want)
		}
	}
}

func versioned(task *api.Task, version uint64) *api.Task {
	task.SpecVersion = version
	return task
}

// TestSpecVersionRunsUntilItsLastTask: a task of an old version keeps
// reading its spec (image, reservations) after two updates, and the
// assignment of a new task is checked against the old task's reservation.
func TestSpecVersionRunsUntilItsLastTask(t *testing.T) {
	s := fixture(t) // t3 runs on n1 at version 1, reserving 1 CPU and 1 GiB
	web := s.Read().Service("svc-web")
	for _, img := range []string{"busybox:2", "busybox:3"} {
		spec := withImage(web, img)
		spec.Resources.Reservations.MemoryBytes = 2 * gib
		mustApply(t, s, UpdateService{ID: web.ID, Spec: spec, At: t0})
	}
	v := s.Read()
	old := v.ServiceSpec(web.ID, v.Task("t3").SpecVersion)
	if old == nil || old.Image != "busybox" {
		t.Fatalf("t3's spec after two updates = %+v", old)
	}
	// n1 has 4 GiB: t3 holds 1, so one task of version 3 (2 GiB) fits and
	// a second does not.
	mustApply(t, s, WriteTasks{Create: []*api.Task{versioned(testTask("n-a", web, 4), 3), versioned(testTask("n-b", web, 5), 3)}, At: t0})
	res := mustApply(t, s, AssignTasks{Assignments: []Assignment{{"n-a", "n1"}, {"n-b", "n1"}}, At: t0}).(AssignResult)
	if res.Assigned != 1 || len(res.Refused) != 1 || !strings.Contains(res.Refused[0].Reason, "not enough memory") {
		t.Fatalf("assign = %+v, want one assigned and one refused for memory", res)
	}
	// The tasks of version 1 go; the version goes with the last of them
	// (3 is current, 2 previous).
	mustApply(t, s, WriteTasks{Delete: []string{"t1", "t2"}, At: t0})
	if got := storedVersions(s.Read(), web.ID); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("versions while t3 runs 1: %v, want [1 2 3]", got)
	}
	mustApply(t, s, WriteTasks{Delete: []string{"t3"}, At: t0})
	if got := storedVersions(s.Read(), web.ID); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("versions after the last task of 1: %v, want [2 3]", got)
	}
}

func TestWriteTasksRefusesUnknownSpecVersion(t *testing.T) {
	s := fixture(t)
	before, index := dump(t, s.Read()), s.Read().Index()
	web := s.Read().Service("svc-web")
	_, _, err := s.apply(0, WriteTasks{Create: []*api.Task{testTask("ok", web, 4), versioned(testTask("bad", web, 5), 7)}, At: t0})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "spec version 7") {
		t.Fatalf("err = %v, want ErrNotFound naming spec version 7", err)
	}
	if after := dump(t, s.Read()); after != before {
		t.Errorf("a rejected create changed the state:\n%s", after)
	}
	if got := s.Read().Index(); got != index+1 {
		t.Errorf("index %d, want %d (a rejection still takes its index)", got, index+1)
	}
}

// TestLegacyTaskSpecAdopted: entries written before tasks referred to
// versions carry a spec in each task. Replayed, the spec becomes the stored
// version if the store has none (the version was collected meanwhile), the
// stored one stays if it has, and the task is kept without its copy.
func TestLegacyTaskSpecAdopted(t *testing.T) {
	s := NewState()
	web := testService("svc-web", "web", 2)
	mustApply(t, s, CreateService{Service: web})
	mustApply(t, s, UpdateService{ID: web.ID, Spec: withImage(web, "busybox:2"), At: t0})
	mustApply(t, s, UpdateService{ID: web.ID, Spec: withImage(web, "busybox:3"), At: t0})
	if got := storedVersions(s.Read(), web.ID); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("versions %v, want [2 3]", got)
	}
	gone := testTask("legacy-1", web, 1)
	gone.Spec = new(withImage(web, "busybox:legacy"))
	kept := versioned(testTask("legacy-3", web, 2), 3)
	kept.Spec = new(withImage(web, "busybox:differs"))
	mustApply(t, s, WriteTasks{Create: []*api.Task{gone, kept}, At: t0})
	v := s.Read()
	if got := v.ServiceSpec(web.ID, 1); got == nil || got.Image != "busybox:legacy" {
		t.Errorf("version 1 = %+v, want the legacy task's copy", got)
	}
	if got := v.ServiceSpec(web.ID, 3); got.Image != "busybox:3" {
		t.Errorf("version 3 = %q, want the stored busybox:3", got.Image)
	}
	for _, id := range []string{"legacy-1", "legacy-3"} {
		if task := v.Task(id); task.HasSpec() {
			t.Errorf("%s stored with its copy", id)
		}
	}
	gone.Spec.Env[0] = "CHANGED=1" // the store keeps its own copy
	if got := s.Read().ServiceSpec(web.ID, 1).Env[0]; got != "A=1" {
		t.Errorf("the stored version shares the caller's values: env %q", got)
	}
}

// TestSpecsCollectedInOneTransaction: a version created, left and
// collected by entries applied together (one transaction, as a follower
// catching up applies them) ends as it does one entry at a time.
func TestSpecsCollectedInOneTransaction(t *testing.T) {
	web := testService("svc-web", "web", 1)
	cmds := []Command{
		CreateService{Service: web},
		WriteTasks{Create: []*api.Task{testTask("a", web, 1)}, At: t0},
		UpdateService{ID: web.ID, Spec: withImage(web, "busybox:2"), At: t0},
		UpdateService{ID: web.ID, Spec: withImage(web, "busybox:3"), At: t0},
		WriteTasks{Create: []*api.Task{versioned(testTask("b", web, 1), 3)}, Delete: []string{"a"}, At: t0},
	}
	one, all := NewState(), NewState()
	for _, c := range cmds {
		mustApply(t, one, c)
	}
	entries := make([]entry, len(cmds))
	for i, c := range cmds {
		entries[i] = entry{index: uint64(i + 1), cmd: c}
	}
	for i, r := range all.applyEntries(entries) {
		if r.err != nil {
			t.Fatalf("entry %d: %v", i, r.err)
		}
	}
	if a, b := dump(t, one.Read()), dump(t, all.Read()); a != b {
		t.Fatalf("one by one and together differ:\n%s\n%s", a, b)
	}
	if got := storedVersions(all.Read(), web.ID); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("versions %v, want [2 3]", got)
	}
}

// TestSnapshotCarriesSpecs: a snapshot holds one spec record per stored
// version, and the restored store answers ServiceSpec as the original.
func TestSnapshotCarriesSpecs(t *testing.T) {
	src := &fsm{state: NewState()}
	applyLog(t, src, manyCommands(10, 4), 1)
	v := src.state.Read()
	stored := v.serviceSpecs()
	if len(stored) <= len(v.Services()) {
		t.Fatalf("%d spec versions for %d services: the history does not update any", len(stored), len(v.Services()))
	}
	var buf bytes.Buffer
	if err := v.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if got := countRecords(t, buf.Bytes())[commandpb.SnapshotRecordType_RECORD_SERVICE_SPEC]; got != len(stored) {
		t.Fatalf("%d spec records, want %d", got, len(stored))
	}
	db, _, err := readSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got := &View{txn: db.Txn(false)}
	for _, r := range stored {
		if s := got.ServiceSpec(r.ServiceID, r.Version); s == nil || s.Image != r.Spec.Image {
			t.Errorf("restored %s v%d = %+v", r.ServiceID, r.Version, s)
		}
	}
}

func countRecords(t *testing.T, data []byte) map[commandpb.SnapshotRecordType]int {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(data))
	counts := map[commandpb.SnapshotRecordType]int{}
	for {
		var rec commandpb.SnapshotRecord
		err := readRecord(br, &rec)
		if err != nil {
			return counts
		}
		counts[rec.Type]++
	}
}

// TestRestoreUpgradesOldSnapshot reads a snapshot written before tasks
// referred to versions: no spec records, a copy of the spec in every task.
// The versions come from the services and the tasks' copies, and the tasks
// are kept without them.
func TestRestoreUpgradesOldSnapshot(t *testing.T) {
	web := testService("svc-web", "web", 2)
	web.SpecVersion = 2
	web.PreviousSpec = &api.ServiceSpec{Name: "web", Image: "busybox:1"}
	web.Spec.Image = "busybox:2"
	old := testTask("old", web, 1) // v1: the previous spec
	old.Spec = new(*web.PreviousSpec)
	cur := versioned(testTask("cur", web, 2), 2)
	cur.Spec = new(web.Spec)
	orphan := &api.Task{ID: "orphan", ServiceID: "svc-gone", ServiceName: "gone", SpecVersion: 4,
		Spec: &api.ServiceSpec{Name: "gone", Image: "busybox:gone"}, DesiredState: api.TaskRemove}

	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	rw := recordWriter{w: bw}
	rw.write(commandpb.SnapshotRecordType_RECORD_HEADER, map[string]any{
		"format": snapshotFormat, "index": 9, "services": 1, "tasks": 3,
	})
	rw.write(commandpb.SnapshotRecordType_RECORD_SERVICE, web)
	for _, task := range []*api.Task{old, cur, orphan} {
		rw.write(commandpb.SnapshotRecordType_RECORD_TASK, task)
	}
	if rw.err != nil || bw.Flush() != nil {
		t.Fatalf("write: %v", rw.err)
	}
	if !strings.Contains(buf.String(), "busybox:gone") {
		t.Fatal("the old-format tasks were written without their copies")
	}
	db, index, err := readSnapshot(&buf)
	if err != nil || index != 9 {
		t.Fatalf("read: index %d, %v", index, err)
	}
	v := &View{txn: db.Txn(false), index: index}
	for _, tc := range []struct {
		service string
		version uint64
		image   string
	}{{web.ID, 1, "busybox:1"}, {web.ID, 2, "busybox:2"}, {"svc-gone", 4, "busybox:gone"}} {
		if s := v.ServiceSpec(tc.service, tc.version); s == nil || s.Image != tc.image {
			t.Errorf("%s v%d = %+v, want image %s", tc.service, tc.version, s, tc.image)
		}
	}
	for _, task := range v.Tasks() {
		if task.HasSpec() {
			t.Errorf("task %s restored with its copy", task.ID)
		}
	}
	// The upgraded store goes on: the orphan's version goes with it.
	s := NewState()
	s.replace(db, index)
	mustApply(t, s, WriteTasks{Delete: []string{"orphan"}, At: t0})
	if got := storedVersions(s.Read(), "svc-gone"); len(got) != 0 {
		t.Errorf("versions of the removed service after its last task: %v", got)
	}
}

// TestEncodeCommandCap: a command over MaxEntryBytes is refused with an
// error naming its size and the limit, before anything is proposed.
func TestEncodeCommandCap(t *testing.T) {
	svc := testService("svc-big", "big", 1)
	svc.Spec.Env = []string{"BLOB=" + strings.Repeat("x", MaxEntryBytes)}
	_, err := EncodeCommand(CreateService{Service: svc})
	if !errors.Is(err, ErrEntryTooLarge) || !strings.Contains(err.Error(), fmt.Sprint(MaxEntryBytes)) {
		t.Fatalf("err = %v, want ErrEntryTooLarge naming the %d-byte limit", err, MaxEntryBytes)
	}
	svc.Spec.Env = []string{"BLOB=" + strings.Repeat("x", MaxEntryBytes-1024)}
	if b, err := EncodeCommand(CreateService{Service: svc}); err != nil || len(b) > MaxEntryBytes {
		t.Fatalf("just under the limit: %d bytes, %v", len(b), err)
	}
}

// TestNodeApplyRefusesOversizeEntry: through a real Raft member, an
// oversize command comes back as ErrEntryTooLarge and commits nothing.
func TestNodeApplyRefusesOversizeEntry(t *testing.T) {
	c := newCluster(t, 1, nil)
	n := c.nodes[c.waitLeader()]
	// The new leader's first entries must be applied before the index is
	// read, or their arrival looks like a change.
	if err := n.VerifyLeader(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := n.State().Read().Index()
	svc := testService("svc-big", "big", 1)
	svc.Spec.Env = []string{"BLOB=" + strings.Repeat("x", MaxEntryBytes)}
	if _, err := n.Apply(t.Context(), CreateService{Service: svc}); !errors.Is(err, ErrEntryTooLarge) {
		t.Fatalf("apply: %v, want ErrEntryTooLarge", err)
	}
	if got := n.State().Read(); got.Index() != before || got.Service(svc.ID) != nil {
		t.Fatalf("index %d → %d, service %v: the oversize command changed the store", before, got.Index(), got.Service(svc.ID))
	}
	createService(t, n, "after") // the member goes on
}

// TestRemoveCommandsDoNotGrowWithTasks: removing a service or a node
// changes every task on it, but the entry names only the object: the FSM
// finds the tasks, so the entry stays small however many there are.
func TestRemoveCommandsDoNotGrowWithTasks(t *testing.T) {
	s := fixture(t)
	web := s.Read().Service("svc-web")
	var tasks []*api.Task
	for i := range 3000 {
		task := testTask(fmt.Sprintf("many-%04d", i), web, uint64(10+i))
		task.NodeID = "n1"
		tasks = append(tasks, task)
	}
	mustApply(t, s, WriteTasks{Create: tasks, At: t0})
	for _, cmd := range []Command{RemoveNode{ID: "n1", At: t0}, RemoveService{ID: web.ID, At: t0}} {
		b, err := EncodeCommand(cmd)
		if err != nil || len(b) > 256 {
			t.Fatalf("%T: %d bytes, %v: want a small entry", cmd, len(b), err)
		}
		mustApply(t, s, cmd)
	}
	removing := s.Read().TasksByDesiredState(api.TaskRemove)
	if len(removing) != 3003 {
		t.Fatalf("%d tasks to remove, want 3003", len(removing))
	}
}
