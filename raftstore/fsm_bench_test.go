package raftstore

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/shoal-sched/shoal/api"
)

// assignFixture makes an FSM with 100 large nodes and, per call of more, a
// new service with n unassigned tasks and the AssignTasks entry placing them.
func assignFixture(b *testing.B, n int) (*fsm, func(round int) *raft.Log) {
	f := &fsm{state: NewState()}
	var cmds []Command
	for i := range 100 {
		node := testNode(fmt.Sprintf("node-%03d", i), api.NodeReady, api.AvailabilityActive)
		node.Resources = api.Resources{NanoCPUs: 1 << 50, MemoryBytes: 1 << 60}
		cmds = append(cmds, UpsertNode{Node: node})
	}
	applyLog(b, f, cmds, 1)
	index := uint64(len(cmds))
	more := func(round int) *raft.Log {
		svc := testService(fmt.Sprintf("svc-%d", round), fmt.Sprintf("s%d", round), uint64(n))
		tasks := make([]*api.Task, n)
		as := make([]Assignment, n)
		for i := range tasks {
			tasks[i] = testTask(fmt.Sprintf("task-%d-%05d", round, i), svc, uint64(i+1))
			as[i] = Assignment{TaskID: tasks[i].ID, NodeID: fmt.Sprintf("node-%03d", i%100)}
		}
		applyLog(b, f, []Command{CreateService{Service: svc}, WriteTasks{Create: tasks, At: t0}}, index+1)
		index += 3
		data, err := EncodeCommand(AssignTasks{Assignments: as, At: t0})
		if err != nil {
			b.Fatal(err)
		}
		return &raft.Log{Index: index, Type: raft.LogCommand, Data: data}
	}
	return f, more
}

// BenchmarkAssign10k: the FSM applying one AssignTasks entry of 10,000
// tasks (decode included), as a follower would.
func BenchmarkAssign10k(b *testing.B) {
	f, more := assignFixture(b, 10000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		entry := more(i)
		b.StartTimer()
		r := f.Apply(entry).(result)
		if got := r.value.(AssignResult).Assigned; r.err != nil || got != 10000 {
			b.Fatalf("assigned %d (err %v)", got, r.err)
		}
	}
}

// BenchmarkApplyCreateService: the FSM applying one CreateService entry.
func BenchmarkApplyCreateService(b *testing.B) {
	f := &fsm{state: NewState()}
	logs := make([]*raft.Log, b.N)
	for i := range logs {
		data, err := EncodeCommand(CreateService{Service: testService(fmt.Sprintf("id-%d", i), fmt.Sprintf("svc-%d", i), 3)})
		if err != nil {
			b.Fatal(err)
		}
		logs[i] = &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, l := range logs {
		if r := f.Apply(l).(result); r.err != nil {
			b.Fatal(r.err)
		}
	}
}

// BenchmarkApplyRequestBatch: the FSM applying Batch entries of 32
// CreateService requests, as the proposer writes a control API burst,
// with the request memory full (every request forgets the oldest one).
// It reports per command.
func BenchmarkApplyRequestBatch(b *testing.B) {
	const perEntry = 32
	f := &fsm{state: NewState()}
	index := uint64(0)
	entry := func(round int) *raft.Log {
		cmds := make([]Command, perEntry)
		for i := range cmds {
			id := fmt.Sprintf("%d-%d", round, i)
			cmds[i] = Request{ID: "req-" + id, Command: CreateService{Service: testService("id-"+id, "svc-"+id, 0)}}
		}
		data, err := EncodeCommand(Batch{Commands: cmds})
		if err != nil {
			b.Fatal(err)
		}
		index++
		return &raft.Log{Index: index, Type: raft.LogCommand, Data: data}
	}
	round := 0
	for ; round*perEntry < RequestMemory+requestValues; round++ {
		f.Apply(entry(round))
	}
	logs := make([]*raft.Log, (b.N+perEntry-1)/perEntry)
	for i := range logs {
		logs[i] = entry(round + i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, l := range logs {
		r := f.Apply(l).(result)
		for _, sub := range r.value.([]BatchResult) {
			if sub.Err != nil {
				b.Fatal(sub.Err)
			}
		}
	}
}

// BenchmarkSnapshot10k: writing a snapshot of 10,000 tasks and reading it back.
func BenchmarkSnapshot10k(b *testing.B) {
	f, more := assignFixture(b, 10000)
	f.Apply(more(0))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var sink memSink
		if err := f.state.Read().WriteSnapshot(&sink); err != nil {
			b.Fatal(err)
		}
		if _, _, err := readSnapshot(&sink); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(sink.Len()))
	}
}
