package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"testing"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func ptask(id string) *shoalpb.Task {
	return shoalpb.FromTask(&api.Task{ID: id, DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskAssigned}})
}

func ids(set *assignmentSet) []string {
	var out []string
	for id := range set.tasks {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func TestAssignmentSet(t *testing.T) {
	type step struct {
		msg        *shoalpb.Assignments
		wantResync bool
		wantBad    bool
		wantSet    []string
		wantRemove []string
	}
	full := func(seq uint64, remove []string, tasks ...string) *shoalpb.Assignments {
		m := &shoalpb.Assignments{Full: true, Sequence: seq, Remove: remove}
		for _, id := range tasks {
			m.Upsert = append(m.Upsert, ptask(id))
		}
		return m
	}
	inc := func(seq uint64, upsert []string, remove ...string) *shoalpb.Assignments {
		m := &shoalpb.Assignments{Sequence: seq, Remove: remove}
		for _, id := range upsert {
			m.Upsert = append(m.Upsert, ptask(id))
		}
		return m
	}
	bad := &shoalpb.Assignments{Full: true, Sequence: 1, Upsert: []*shoalpb.Task{ptask("a"), {Id: "b", DesiredState: "sideways"}, {}}}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "full then increments", steps: []step{
			{msg: full(1, nil, "a", "b"), wantSet: []string{"a", "b"}},
			{msg: inc(2, []string{"c"}, "a"), wantSet: []string{"b", "c"}, wantRemove: []string{"a"}},
			{msg: inc(3, nil, "b"), wantSet: []string{"c"}, wantRemove: []string{"b"}},
		}},
		{name: "increment before full", steps: []step{
			{msg: inc(1, []string{"a"}), wantResync: true},
			{msg: full(2, nil, "b"), wantSet: []string{"b"}},
		}},
		{name: "gap then resync", steps: []step{
			{msg: full(1, nil, "a"), wantSet: []string{"a"}},
			{msg: inc(3, []string{"b"}), wantResync: true, wantSet: []string{"a"}},
			{msg: inc(4, []string{"c"}), wantResync: true, wantSet: []string{"a"}},
			{msg: full(5, nil, "c"), wantSet: []string{"c"}, wantRemove: []string{"a"}},
			{msg: inc(6, []string{"d"}), wantSet: []string{"c", "d"}},
		}},
		{name: "replayed sequence is a gap", steps: []step{
			{msg: full(1, nil, "a"), wantSet: []string{"a"}},
			{msg: inc(1, []string{"b"}), wantResync: true, wantSet: []string{"a"}},
		}},
		{name: "full names leftovers", steps: []step{
			{msg: full(1, []string{"old", "a"}, "a"), wantSet: []string{"a"}, wantRemove: []string{"old"}},
		}},
		{name: "undecodable tasks skipped", steps: []step{
			{msg: bad, wantBad: true, wantSet: []string{"a"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := newAssignmentSet()
			for i, s := range tc.steps {
				ch, err := set.apply(s.msg)
				if got := errors.Is(err, errResync); got != s.wantResync {
					t.Fatalf("step %d: resync = %v (err %v), want %v", i, got, err, s.wantResync)
				}
				if got := err != nil && !errors.Is(err, errResync); got != s.wantBad {
					t.Fatalf("step %d: bad = %v (err %v), want %v", i, got, err, s.wantBad)
				}
				if got := ids(set); fmt.Sprint(got) != fmt.Sprint(s.wantSet) {
					t.Fatalf("step %d: set = %v, want %v", i, got, s.wantSet)
				}
				if fmt.Sprint(ch.remove) != fmt.Sprint(s.wantRemove) {
					t.Fatalf("step %d: remove = %v, want %v", i, ch.remove, s.wantRemove)
				}
			}
		})
	}
}

// FuzzAssignments feeds random message sequences (full sets, increments
// with any sequence number, random task ids, undecodable tasks) and checks
// that applying them never panics, that a gap always leaves the set
// unsynced until a full set, and that a full set always defines the set.
func FuzzAssignments(f *testing.F) {
	f.Add([]byte{1, 1, 3, 0, 2, 0, 4, 1})
	f.Add([]byte{0, 5, 1, 2, 1, 1, 0, 0, 0, 9})
	f.Add([]byte{})
	f.Fuzz(fuzzBody)
}

func fuzzBody(t *testing.T, data []byte) {
	{
		set := newAssignmentSet()
		for len(data) >= 4 {
			op, seqDelta, n := data[0], data[1], int(data[2]%8)
			data = data[3:]
			m := &shoalpb.Assignments{Full: op%3 == 0}
			m.Sequence = set.seq + uint64(seqDelta%4)
			if op%7 == 6 {
				var b [8]byte
				copy(b[:], data)
				m.Sequence = binary.LittleEndian.Uint64(b[:])
			}
			for i := 0; i < n && len(data) > 0; i++ {
				id := fmt.Sprintf("t%d", data[0]%16)
				switch {
				case data[0]&0x80 != 0:
					m.Remove = append(m.Remove, id)
				case data[0]&0x40 != 0:
					m.Upsert = append(m.Upsert, &shoalpb.Task{Id: id, DesiredState: "bogus"})
				default:
					m.Upsert = append(m.Upsert, ptask(id))
				}
				data = data[1:]
			}
			wasSynced, lastSeq := set.synced, set.seq
			ch, err := set.apply(m)
			checkApplied(t, set, m, ch, err, wasSynced, lastSeq)
		}
	}
}

// checkApplied checks one applied message: a full set defines the set, an
// increment out of order asks for a resync and changes nothing, one in
// order applies.
func checkApplied(t *testing.T, set *assignmentSet, m *shoalpb.Assignments, ch change, err error, wasSynced bool, lastSeq uint64) {
	t.Helper()
	switch {
	case m.Full:
		if !set.synced || set.seq != m.Sequence {
			t.Fatalf("full set left synced=%v seq=%d, want synced seq=%d", set.synced, set.seq, m.Sequence)
		}
		want := map[string]bool{}
		for _, u := range m.Upsert {
			if u.GetDesiredState() != "bogus" {
				want[u.GetId()] = true
			}
		}
		if len(want) != len(set.tasks) {
			t.Fatalf("full set holds %v, want %v", ids(set), want)
		}
		for _, id := range ch.remove {
			if want[id] {
				t.Fatalf("full set both keeps and removes %s", id)
			}
		}
	case !wasSynced || m.Sequence != lastSeq+1:
		if !errors.Is(err, errResync) || set.synced {
			t.Fatalf("out-of-order increment (synced=%v, seq %d after %d): err=%v synced=%v; want resync",
				wasSynced, m.Sequence, lastSeq, err, set.synced)
		}
		if len(ch.upsert)+len(ch.remove) != 0 {
			t.Fatal("an out-of-order increment changed something")
		}
	default:
		if errors.Is(err, errResync) || set.seq != m.Sequence {
			t.Fatalf("in-order increment: err=%v seq=%d, want applied at %d", err, set.seq, m.Sequence)
		}
	}
}
