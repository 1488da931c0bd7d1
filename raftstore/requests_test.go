package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore/commandpb"
)

func TestRequestAppliedOnce(t *testing.T) {
	s := NewState()
	a := NewLocalApplier(s)
	ctx := t.Context()
	create := Request{ID: "req-create", Command: CreateService{Service: testService("svc-1", "web", 1)}}
	first, err := a.Apply(ctx, create)
	if err != nil {
		t.Fatal(err)
	}
	// The retry of a create was built again: a new object id, new times.
	again := testService("svc-2", "web", 1)
	again.CreatedAt = t0.Add(1)
	second, err := a.Apply(ctx, Request{ID: "req-create", Command: CreateService{Service: again}})
	if err != nil {
		t.Fatalf("repeated create: %v", err)
	}
	if second.Index != first.Index || second.Value != first.Value {
		t.Errorf("repeat answered %d %v, want the first answer %d %v", second.Index, second.Value, first.Index, first.Value)
	}
	if n := len(s.Read().Services()); n != 1 || s.Read().Service("svc-1") == nil {
		t.Fatalf("%d services after a repeated create, want svc-1 alone", n)
	}

	// Without an expected version an update applies whenever it is sent:
	// the request ID is what keeps its retry from bumping the version twice.
	spec := testService("svc-1", "web", 5).Spec
	update := Request{ID: "req-update", Command: UpdateService{ID: "svc-1", Spec: spec, At: t0}}
	for range 3 {
		if _, err := a.Apply(ctx, update); err != nil {
			t.Fatal(err)
		}
	}
	if v := s.Read().Service("svc-1").SpecVersion; v != 2 {
		t.Errorf("spec version %d after one update sent three times, want 2", v)
	}

	// A rejection is not remembered: the retry is decided again.
	conflict := Request{ID: "req-scale", Command: UpdateService{ID: "svc-1", Spec: spec, ExpectedVersion: 1}}
	if _, err := a.Apply(ctx, conflict); !errors.Is(err, ErrConflict) {
		t.Fatalf("update at a stale version: err = %v, want ErrConflict", err)
	}
	if _, ok := s.Read().Request("req-scale"); ok {
		t.Error("a rejected request is remembered")
	}
	retry := Request{ID: "req-scale", Command: UpdateService{ID: "svc-1", Spec: spec, ExpectedVersion: 2}}
	if _, err := a.Apply(ctx, retry); err != nil {
		t.Fatalf("retry after a rejection: %v", err)
	}

	// An ID reused for another kind of command is refused, not answered
	// with a result of the wrong type.
	before := dump(t, s.Read())
	_, err = a.Apply(ctx, Request{ID: "req-create", Command: RemoveService{ID: "svc-1"}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `request id "req-create": already used by a CREATE_SERVICE command`) {
		t.Fatalf("reused id: err = %v", err)
	}
	if dump(t, s.Read()) != before {
		t.Error("a refused request changed the state")
	}
}

func TestRequestCheckedByFSM(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  Request
		want string
	}{
		{"empty id", Request{Command: RemoveManager{ID: "m1"}}, "request id: empty"},
		{"long id", Request{ID: strings.Repeat("x", MaxRequestIDLength+1), Command: RemoveManager{ID: "m1"}}, "longer than 128"},
		{"no command", Request{ID: "r"}, "command: nil"},
		{"batch", Request{ID: "r", Command: Batch{}}, "one plain command"},
		{"nested", Request{ID: "r", Command: Request{ID: "q", Command: RemoveManager{ID: "m1"}}}, "one plain command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := EncodeCommand(tc.req); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("encode: err = %v, want ErrInvalid with %q", err, tc.want)
			}
			s := fixture(t)
			before := dump(t, s.Read())
			if _, _, err := s.apply(0, tc.req); !errors.Is(err, ErrInvalid) {
				t.Errorf("apply: err = %v, want ErrInvalid", err)
			}
			if dump(t, s.Read()) != before {
				t.Error("a refused request changed the state")
			}
		})
	}
}

func TestRequestsSurviveSnapshot(t *testing.T) {
	src := &fsm{state: NewState()}
	cmds := []Command{
		Request{ID: "r-create", Command: CreateService{Service: testService("svc-1", "web", 1)}},
		Request{ID: "r-node", Command: UpsertNode{Node: testNode("n1", api.NodeReady, api.AvailabilityActive)}},
		Request{ID: "r-update", Command: UpdateService{ID: "svc-1", Spec: testService("svc-1", "web", 3).Spec}},
		Request{ID: "r-remove", Command: RemoveService{ID: "svc-1"}},
	}
	applyLog(t, src, cmds, 1)
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
		t.Fatal(err)
	}
	if got, want := dump(t, dst.state.Read()), dump(t, src.state.Read()); got != want {
		t.Fatalf("restored state differs:\n got %s\nwant %s", got, want)
	}
	want := []string{"r-create 1 CREATE_SERVICE@1", "r-node 2 UPSERT_NODE@2", "r-update 3 UPDATE_SERVICE@3", "r-remove 4 REMOVE_SERVICE@4"}
	if got := requestList(dst.state.Read()); got != strings.Join(want, "; ") {
		t.Errorf("restored requests: %s\nwant %s", got, strings.Join(want, "; "))
	}
	// After the restore a repeat is still answered (with the first index
	// and no value) and changes nothing.
	before := dump(t, dst.state.Read())
	res := dst.ApplyBatch([]*raft.Log{logEntry(t, 5, cmds[3]), logEntry(t, 6, cmds[0])})
	for i, r := range res {
		r := r.(result)
		if r.err != nil || r.value != nil || r.firstIndex != []uint64{4, 1}[i] {
			t.Errorf("repeat %d after restore answered %+v, want index %d and no value", i, r, []uint64{4, 1}[i])
		}
	}
	after := dst.state.Read()
	if after.Index() != 6 {
		t.Errorf("index %d after two repeats, want 6 (repeats still take their entries)", after.Index())
	}
	if dump(t, after) != before {
		t.Errorf("repeats after a restore changed the state")
	}
}

func TestRequestMemoryBound(t *testing.T) {
	const extra = 5
	reqs := make([]Command, RequestMemory+extra)
	for i := range reqs {
		reqs[i] = Request{ID: fmt.Sprintf("r%05d", i), Command: UpsertManager{Manager: api.Manager{ID: "m1", Addr: fmt.Sprintf("10.0.0.1:%d", i)}}}
	}
	// The same log applied in different batches (a leader one entry at a
	// time, a follower catching up) forgets the same requests; in one
	// batch of all, the transaction forgets and strips requests it wrote
	// itself.
	var lists []string
	for _, batch := range []int{1000, 7, len(reqs)} {
		s := NewState()
		for start := 0; start < len(reqs); start += batch {
			var entries []entry
			for i := start; i < min(start+batch, len(reqs)); i++ {
				entries = append(entries, entry{index: uint64(i + 1), cmd: reqs[i]})
			}
			s.applyEntries(entries)
		}
		v := s.Read()
		recs := v.requests()
		if len(recs) != RequestMemory {
			t.Fatalf("batches of %d: %d requests remembered, want %d", batch, len(recs), RequestMemory)
		}
		if recs[0].ID != fmt.Sprintf("r%05d", extra) || recs[0].Seq != extra+1 || recs[len(recs)-1].Seq != RequestMemory+extra {
			t.Errorf("batches of %d: remembered %s (seq %d) to seq %d, want r%05d (seq %d) to seq %d",
				batch, recs[0].ID, recs[0].Seq, recs[len(recs)-1].Seq, extra, extra+1, RequestMemory+extra)
		}
		for i := range extra {
			if _, ok := v.Request(fmt.Sprintf("r%05d", i)); ok {
				t.Errorf("batches of %d: r%05d still remembered", batch, i)
			}
		}
		// Only the newest keep their values.
		withValue := 0
		for _, r := range recs {
			if r.Value != nil {
				withValue++
			}
		}
		if withValue != requestValues || recs[len(recs)-1].Value == nil || recs[len(recs)-requestValues-1].Value != nil {
			t.Errorf("batches of %d: %d requests keep a value, want the newest %d", batch, withValue, requestValues)
		}
		lists = append(lists, requestList(v))
		// A forgotten request is applied again when it comes back.
		idx, _, err := s.apply(0, reqs[0])
		if err != nil || idx != uint64(len(reqs)+1) {
			t.Errorf("batches of %d: forgotten request applied at %d (%v), want a new entry %d", batch, idx, err, len(reqs)+1)
		}
	}
	for i := range lists[1:] {
		if lists[i+1] != lists[0] {
			t.Error("the remembered requests depend on how the log was batched")
		}
	}
}

// requestList renders the remembered requests, oldest first.
func requestList(v *View) string {
	var out []string
	for _, r := range v.requests() {
		out = append(out, fmt.Sprintf("%s %d %s@%d", r.ID, r.Seq, commandpb.CommandType(r.Type), r.Index))
	}
	return strings.Join(out, "; ")
}

func logEntry(t testing.TB, index uint64, cmd Command) *raft.Log {
	t.Helper()
	data, err := EncodeCommand(cmd)
	if err != nil {
		t.Fatalf("encode %T: %v", cmd, err)
	}
	return &raft.Log{Index: index, Type: raft.LogCommand, Data: data}
}
