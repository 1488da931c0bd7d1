package raftstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/shoal-sched/shoal/api"
)

// manyCommands builds a history touching every table: services, nodes,
// tasks through their life, removals and rejections.
func manyCommands(services, tasksPer int) []Command {
	var cmds []Command
	cmds = append(cmds, SetCluster{Cluster: api.ClusterInfo{ID: "c1", CreatedAt: t0}},
		UpsertManager{Manager: api.Manager{ID: "m1", RaftAddr: "127.0.0.1:1"}},
		UpsertManager{Manager: api.Manager{ID: "m2", RaftAddr: "127.0.0.1:2"}})
	for i := range 8 {
		n := testNode(fmt.Sprintf("n%d", i), api.NodeReady, api.AvailabilityActive)
		n.Resources = api.Resources{NanoCPUs: 1000 * cpu1, MemoryBytes: 1000 * gib}
		cmds = append(cmds, UpsertNode{Node: n})
	}
	for i := range services {
		svc := testService(fmt.Sprintf("svc-%03d", i), fmt.Sprintf("s%03d", i), uint64(tasksPer))
		at := t0.Add(time.Duration(i) * time.Second)
		var tasks []*api.Task
		var as []Assignment
		var st []TaskStatusUpdate
		for j := range tasksPer {
			task := testTask(fmt.Sprintf("t-%03d-%03d", i, j), svc, uint64(j+1))
			tasks = append(tasks, task)
			node := fmt.Sprintf("n%d", (i+j)%8)
			as = append(as, Assignment{TaskID: task.ID, NodeID: node})
			st = append(st, TaskStatusUpdate{TaskID: task.ID, Status: api.TaskStatus{State: api.TaskRunning, ContainerID: "c-" + task.ID}})
		}
		cmds = append(cmds,
			CreateService{Service: svc},
			CreateService{Service: svc}, // rejected
			WriteTasks{Create: tasks, At: at},
			AssignTasks{Assignments: as, At: at},
			UpdateTaskStatus{Updates: st, At: at})
		if i%5 == 4 {
			// A client request, sent twice (the second is answered with
			// the first result), and one without a request ID.
			req := Request{ID: fmt.Sprintf("req-%03d", i), Command: UpdateService{ID: svc.ID, Spec: svc.Spec, At: at}}
			cmds = append(cmds, req, req, UpdateService{ID: svc.ID, Spec: svc.Spec, At: at})
		}
		if i%10 == 9 { // a third version, and version 1 collected with its tasks
			cmds = append(cmds, UpdateService{ID: svc.ID, Spec: svc.Spec, At: at},
				WriteTasks{Delete: []string{tasks[0].ID, tasks[len(tasks)-1].ID}, At: at},
				WriteTasks{Delete: taskIDs(tasks[1 : len(tasks)-1]), At: at})
		}
		if i%7 == 6 {
			cmds = append(cmds, RemoveService{ID: svc.ID, At: at},
				WriteTasks{Delete: taskIDs(tasks[:len(tasks)/2]), At: at})
		}
	}
	cmds = append(cmds, UpdateNode{ID: "n3", Availability: api.AvailabilityDrain, LabelAdd: map[string]string{"x": "y"}},
		SetNodeStatus{ID: "n4", Status: api.NodeDown}, RemoveNode{ID: "n5"}, RemoveManager{ID: "m2"},
		SetNodeStatus{ID: "n6", Status: api.NodeRestarting, RestartDeadline: t0.Add(time.Minute), At: t0},
		CreateSecret{Secret: testSecret(api.KindSecret, "sec-1", "db_password", "s3cret")},
		CreateSecret{Secret: testSecret(api.KindConfig, "cfg-1", "app_conf", "k=v")},
		UpdateSecret{Kind: api.KindConfig, ID: "cfg-1", Labels: map[string]string{"a": "b"}, At: t0})
	return cmds
}

func taskIDs(tasks []*api.Task) []string {
	out := make([]string, len(tasks))
	for i, t := range tasks {
		out[i] = t.ID
	}
	return out
}

// applyLog feeds commands to an FSM as Raft would, from encoded bytes.
func applyLog(t testing.TB, f *fsm, cmds []Command, first uint64) {
	t.Helper()
	for i, cmd := range cmds {
		data, err := EncodeCommand(cmd)
		if err != nil {
			t.Fatalf("encode %T: %v", cmd, err)
		}
		f.Apply(&raft.Log{Index: first + uint64(i), Type: raft.LogCommand, Data: data})
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestSnapshotRestore(t *testing.T) {
	src := &fsm{state: NewState()}
	applyLog(t, src, manyCommands(40, 10), 1)
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Changes after the snapshot is taken are not in it.
	want := dump(t, src.state.Read())
	wantIndex := src.state.Read().Index()
	applyLog(t, src, []Command{RemoveNode{ID: "n0"}}, wantIndex+1)

	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	dst := &fsm{state: NewState()}
	applyLog(t, dst, []Command{CreateService{Service: testService("old", "old", 1)}}, 1)
	changed := dst.state.Changed()
	events, cancel := dst.state.Subscribe(4)
	defer cancel()
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatalf("restore: %v", err)
	}
	got := dst.state.Read()
	if d := dump(t, got); d != want {
		t.Errorf("restored state differs:\n got %s\nwant %s", d, want)
	}
	if got.Index() != wantIndex {
		t.Errorf("index = %d, want %d", got.Index(), wantIndex)
	}
	if len(got.Tasks()) == 0 || len(got.TasksByNode("n1")) == 0 || got.ServiceByName("s001") == nil {
		t.Error("restored indexes do not answer")
	}
	select {
	case <-changed:
	default:
		t.Error("Changed did not fire on restore")
	}
	if _, ok := <-events; ok {
		t.Error("subscriber not closed on restore")
	}
	// The restored state goes on applying like the original.
	more := []Command{SetNodeStatus{ID: "n1", Status: api.NodeDown}, RemoveService{ID: "svc-000"}}
	applyLog(t, dst, more, wantIndex+1)
	if dst.state.Read().Node("n1").Status != api.NodeDown {
		t.Error("restored state does not apply")
	}
}

func TestRestoreRejectsDamage(t *testing.T) {
	src := &fsm{state: NewState()}
	applyLog(t, src, manyCommands(3, 3), 1)
	var sink memSink
	snap, _ := src.Snapshot()
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	full := sink.Bytes()
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"truncated", full[:len(full)*2/3]},
		{"cut at a record boundary", full[:lastRecordStart(t, full)]},
		{"garbage", bytes.Repeat([]byte{0x7f}, 300)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := &fsm{state: NewState()}
			applyLog(t, dst, []Command{CreateService{Service: testService("keep", "keep", 1)}}, 1)
			if err := dst.Restore(io.NopCloser(bytes.NewReader(tc.data))); err == nil {
				t.Fatal("restore succeeded")
			}
			if dst.state.Read().ServiceByName("keep") == nil {
				t.Error("a failed restore replaced the state")
			}
		})
	}
}

func TestFSMDeterministic(t *testing.T) {
	cmds := manyCommands(20, 5)
	a, b := &fsm{state: NewState()}, &fsm{state: NewState()}
	applyLog(t, a, cmds, 1)
	// b gets the same log in batches, as a follower catching up would.
	var logs []*raft.Log
	for i, cmd := range cmds {
		data, _ := EncodeCommand(cmd)
		logs = append(logs, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data})
		if i%3 == 0 {
			logs = append(logs, &raft.Log{Type: raft.LogNoop})
		}
	}
	for i := range logs {
		if logs[i].Type == raft.LogNoop {
			logs[i].Index = logs[i-1].Index
		}
	}
	var res []any
	for len(logs) > 0 {
		n := min(7, len(logs))
		res = append(res, b.ApplyBatch(logs[:n])...)
		logs = logs[n:]
	}
	if da, db := dump(t, a.state.Read()), dump(t, b.state.Read()); da != db {
		t.Errorf("one by one and batched differ:\n%s\n%s", da, db)
	}
	var rejected int
	for _, r := range res {
		if r, ok := r.(result); ok && errors.Is(r.err, ErrAlreadyExists) {
			rejected++
		}
	}
	if rejected != 20 {
		t.Errorf("rejections in batched responses = %d, want 20", rejected)
	}
}

func TestFSMPanicsOnCorruptEntry(t *testing.T) {
	f := &fsm{state: NewState()}
	defer func() {
		if recover() == nil {
			t.Error("no panic on an undecodable entry")
		}
	}()
	f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte{0xff, 0x01}})
}

// lastRecordStart returns the offset of the last record of a snapshot.
func lastRecordStart(t *testing.T, b []byte) int {
	last := 0
	for off := 0; off < len(b); {
		size, n := binary.Uvarint(b[off:])
		if n <= 0 {
			t.Fatalf("bad record length at %d", off)
		}
		last = off
		off += n + int(size)
	}
	return last
}
