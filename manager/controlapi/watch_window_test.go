package controlapi_test

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// TestWatchTimeWindow: a history watch with since_time and until_time
// passes only the changes in between, ends once until_time has passed,
// and names the oldest change held; since after until is refused with
// both named.
func TestWatchTimeWindow(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	l := c.WaitLeader(waitTimeout)
	cl := c.Client(l)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 8 {
		apply(t, c, raftstore.UpsertNode{Node: &api.Node{ID: fmt.Sprintf("win-%d", i), Hostname: fmt.Sprintf("win-%d", i),
			Status: api.NodeDown, Availability: api.AvailabilityActive, UpdatedAt: base.Add(time.Duration(i) * time.Minute)}})
	}
	read := func(req *shoalpb.WatchRequest) ([]string, *shoalpb.WatchMessage) {
		t.Helper()
		stream, err := cl.Watch(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		var first *shoalpb.WatchMessage
		for {
			m, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return names, first
			}
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = m
			}
			for _, ch := range m.GetChanges() {
				names = append(names, ch.GetEvent().GetName())
			}
		}
	}
	sel := []*shoalpb.WatchSelector{{Kind: "node", Node: "win-"}}
	names, first := read(&shoalpb.WatchRequest{History: true, Summaries: true, Selectors: sel,
		SinceTime: timestamppb.New(base.Add(2 * time.Minute)), UntilTime: timestamppb.New(base.Add(4 * time.Minute))})
	if want := []string{"win-2", "win-3", "win-4"}; !slices.Equal(names, want) {
		t.Fatalf("changes %v, want %v", names, want)
	}
	if got := first.GetHistoryOldestTime(); got == nil || got.AsTime().After(base) {
		t.Fatalf("oldest time %v, want at or before %v", got, base)
	}

	// A bounded history names the oldest change it still holds.
	c.Manager(l).Raft().State().SetHistoryLimit(3)
	apply(t, c, raftstore.UpsertNode{Node: &api.Node{ID: "win-8", Hostname: "win-8",
		Status: api.NodeDown, Availability: api.AvailabilityActive, UpdatedAt: base.Add(8 * time.Minute)}})
	names, first = read(&shoalpb.WatchRequest{History: true, Summaries: true, Selectors: sel,
		SinceTime: timestamppb.New(base), UntilTime: timestamppb.New(base.Add(30 * time.Minute))})
	if first.GetHistoryFloor() == 0 || first.GetHistoryOldestTime() == nil || !first.GetHistoryOldestTime().AsTime().After(base) {
		t.Fatalf("first message %v: want a floor and an oldest time after %v", first, base)
	}
	if len(names) == 0 || len(names) > 3 || names[len(names)-1] != "win-8" {
		t.Fatalf("changes %v, want the last few held", names)
	}

	stream, err := cl.Watch(t.Context(), &shoalpb.WatchRequest{History: true, Summaries: true,
		SinceTime: timestamppb.New(base.Add(time.Hour)), UntilTime: timestamppb.New(base)})
	if err == nil {
		_, err = stream.Recv()
	}
	wantCode(t, err, codes.InvalidArgument, "since_time "+base.Add(time.Hour).UTC().Format(time.RFC3339Nano),
		"until_time "+base.UTC().Format(time.RFC3339Nano))
}
