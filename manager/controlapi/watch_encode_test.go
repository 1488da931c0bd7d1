package controlapi

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

func taskEvent(index uint64, id string) raftstore.Event {
	return raftstore.Event{Index: index, Kind: "task", Action: "update", Task: &api.Task{
		ID: id, ServiceID: "svc", ServiceName: "web", Slot: 1, SpecVersion: 1,
		DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskRunning}, UpdatedAt: time.Unix(1700000000, 0)}}
}

func convertTask(ev raftstore.Event) func() *shoalpb.WatchChange {
	return func() *shoalpb.WatchChange {
		return &shoalpb.WatchChange{Index: ev.Index, Kind: ev.Kind, Action: ev.Action, Task: shoalpb.FromTaskWithSpec(ev.Task, nil)}
	}
}

// TestEncodedChangesReadAsChanges: a message whose changes went in
// encoded reads back as the message with the same changes set, in order.
func TestEncodedChangesReadAsChanges(t *testing.T) {
	c := newChangeCache()
	want := &shoalpb.WatchMessage{Index: 9, HistoryFloor: 3}
	var encoded [][]byte
	for i := range 3 {
		ev := taskEvent(uint64(7+i), fmt.Sprintf("t%d", i))
		b, err := c.get(ev, formObjects, convertTask(ev))
		if err != nil {
			t.Fatal(err)
		}
		encoded = append(encoded, b)
		want.Changes = append(want.Changes, convertTask(ev)())
	}
	data, err := proto.Marshal(withChanges(&shoalpb.WatchMessage{Index: 9, HistoryFloor: 3}, encoded))
	if err != nil {
		t.Fatal(err)
	}
	got := &shoalpb.WatchMessage{}
	if err := proto.Unmarshal(data, got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("read back %v\nwant %v", got, want)
	}
}

// TestChangeCacheEncodesOnce: the watchers of one change share its
// encoding; a summary, and a task without its spec, are encoded apart; an
// evicted change is encoded again.
func TestChangeCacheEncodesOnce(t *testing.T) {
	c := newChangeCache()
	ev := taskEvent(5, "t")
	converted := 0
	convert := func() *shoalpb.WatchChange { converted++; return convertTask(ev)() }
	for range 3 {
		if _, err := c.get(ev, formObjects, convert); err != nil {
			t.Fatal(err)
		}
	}
	if converted != 1 {
		t.Fatalf("three watchers of one change converted it %d times, want once", converted)
	}
	if _, err := c.get(ev, formSummaries, convert); err != nil || converted != 2 {
		t.Fatalf("summary: %v, converted %d times in all, want 2", err, converted)
	}
	if _, err := c.get(ev, formNoSpecs, convert); err != nil || converted != 3 {
		t.Fatalf("without the spec: %v, converted %d times in all, want 3", err, converted)
	}
	if _, err := c.get(ev, formNoSpecs, convert); err != nil || converted != 3 {
		t.Fatalf("without the spec again: %v, converted %d times in all, want 3", err, converted)
	}
	for i := range changeCacheEvents {
		other := taskEvent(uint64(100+i), "o")
		if _, err := c.get(other, formObjects, convertTask(other)); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.byKey) != changeCacheEvents {
		t.Fatalf("cache holds %d changes, want at most %d", len(c.byKey), changeCacheEvents)
	}
	if _, err := c.get(ev, formObjects, convert); err != nil || converted != 4 {
		t.Fatalf("after eviction: %v, converted %d times in all, want 4", err, converted)
	}
}

// TestChangeCacheSharesABatch: the watchers of one live batch find its
// changes' entries with one look-up, the same entries a watcher catching
// up finds change by change; the batches held stay within the cache's
// bound.
func TestChangeCacheSharesABatch(t *testing.T) {
	c := newChangeCache()
	batch := []raftstore.Event{taskEvent(5, "a"), taskEvent(5, "b")}
	first, again := c.batch(batch, formNoSpecs), c.batch(batch, formNoSpecs)
	if len(first) != 2 || first[0] != again[0] || first[1] != again[1] {
		t.Fatalf("two watchers of one batch got entries %p and %p, want the same two", first, again)
	}
	converted := 0
	convert := func() *shoalpb.WatchChange { converted++; return convertTask(batch[1])() }
	if _, err := first[1].encode(convert); err != nil {
		t.Fatal(err)
	}
	if _, err := c.get(batch[1], formNoSpecs, convert); err != nil || converted != 1 {
		t.Fatalf("the same change caught up: %v, converted %d times, want once", err, converted)
	}
	if other := c.batch(batch, formObjects); other[1] == first[1] {
		t.Fatal("a batch with its specs shares the entries of one without")
	}
	for i := range changeCacheEvents {
		c.batch([]raftstore.Event{taskEvent(uint64(100+i), "o")}, formObjects)
	}
	if c.batchTotal > changeCacheEvents || len(c.batches) != len(c.batchRing) || len(c.batches) > changeCacheEvents {
		t.Fatalf("the cache holds %d batches of %d changes (ring %d), want at most %d changes", len(c.batches), c.batchTotal, len(c.batchRing), changeCacheEvents)
	}
	if _, ok := c.batches[batchKey{first: &batch[0], form: formNoSpecs}]; ok {
		t.Fatal("the oldest batch was not evicted")
	}
}
