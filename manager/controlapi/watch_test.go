package controlapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// seen is what a watcher received: the index and node id of each change.
type seen struct {
	mu      sync.Mutex
	changes []string // "index node-id"
	last    uint64
}

func (s *seen) add(m *shoalpb.WatchMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range m.GetChanges() {
		s.changes = append(s.changes, fmt.Sprint(c.GetIndex(), " ", c.GetNode().GetId()))
	}
	s.last = max(s.last, m.GetIndex())
}

func (s *seen) snapshot() ([]string, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.changes...), s.last
}

// watchInto reads a watch of the nodes named w-… into s until the stream
// ends, and returns why it ended.
func watchInto(ctx context.Context, cl shoalpb.ControlClient, since uint64, s *seen) error {
	stream, err := cl.Watch(ctx, &shoalpb.WatchRequest{SinceIndex: since,
		Selectors: []*shoalpb.WatchSelector{{Kind: "node", Node: "w-"}}})
	if err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		if m.GetResyncRequired() {
			return fmt.Errorf("resync required at %d: %s", m.GetIndex(), m.GetResyncReason())
		}
		s.add(m)
	}
}

// writeNodes registers nodes w-from… on whichever manager leads, and
// returns "index id" of each that committed (an uncertain commit is left
// out: it may or may not show).
func writeNodes(t *testing.T, c *managertest.Cluster, from, n int) []string {
	t.Helper()
	var out []string
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("w-%04d", i)
		managertest.WaitFor(t, waitTimeout, func() error {
			l := c.Leader()
			if l < 0 {
				return errors.New("no leader")
			}
			resp, err := c.Manager(l).Raft().Apply(t.Context(), raftstore.UpsertNode{Node: &api.Node{
				ID: id, Hostname: id, Role: api.RoleWorker, Availability: api.AvailabilityActive, Status: api.NodeReady, UpdatedAt: time.Now()}})
			switch {
			case errors.Is(err, raftstore.ErrCommitUncertain):
				t.Logf("write %s: %v", id, err)
				return nil
			case err != nil:
				return err
			}
			out = append(out, fmt.Sprint(resp.Index, " ", id))
			return nil
		})
	}
	return out
}

// TestWatchSeesEveryChangeOnceAcrossFailover watches from an index on the
// leader, moves leadership away, stops the manager the stream was on and
// resumes on another from the last index seen: every committed change
// after the first index arrives exactly once, in index order.
func TestWatchSeesEveryChangeOnceAcrossFailover(t *testing.T) {
	c, _ := cluster(t)
	start := writeNodes(t, c, 0, 1)
	for i := 1; len(start) == 0; i++ { // an election at startup may leave it uncertain
		start = writeNodes(t, c, 100+i, 1)
	}
	var from uint64
	fmt.Sscan(start[0], &from)
	first := c.WaitLeader(waitTimeout)
	var s seen
	ended := make(chan error, 1)
	go func() { ended <- watchInto(t.Context(), c.Client(first), from, &s) }()

	want := writeNodes(t, c, 1, 20)
	c.TransferLeadership((first+1)%3, waitTimeout)
	want = append(want, writeNodes(t, c, 21, 20)...)
	// The old leader, now a follower, goes on serving its stream until it stops.
	c.Stop(first)
	if err := <-ended; status.Code(err) == codes.OK {
		t.Fatalf("the stream of a stopped manager ended with %v", err)
	}
	_, last := s.snapshot()
	other := (first + 2) % 3
	go func() { ended <- watchInto(t.Context(), c.Client(other), last, &s) }()
	want = append(want, writeNodes(t, c, 41, 20)...)

	managertest.WaitFor(t, waitTimeout, func() error {
		got, _ := s.snapshot()
		has := map[string]bool{}
		for _, g := range got {
			has[g] = true
		}
		for _, w := range want {
			if !has[w] {
				return fmt.Errorf("committed change %q not seen yet (watcher saw %d changes)", w, len(got))
			}
		}
		return nil
	})
	got, _ := s.snapshot()
	var prev uint64
	byEntry := map[string]bool{}
	for _, g := range got {
		var idx uint64
		fmt.Sscan(g, &idx)
		if idx <= prev {
			t.Fatalf("change %q after index %d: not in order or seen twice (all: %v)", g, prev, got)
		}
		prev, byEntry[g] = idx, true
	}
	if len(got) < len(want) {
		t.Fatalf("saw %d changes, %d committed", len(got), len(want))
	}
}

// TestWatchDropsASlowWatcher: a watcher that stops reading is dropped with
// a resync signal, while writes go on and the state keeps applying them.
func TestWatchDropsASlowWatcher(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	l := c.WaitLeader(waitTimeout)
	// A fixed window keeps gRPC from growing its buffers while the client
	// does not read, so the stream backs up into the manager early.
	conn, err := grpc.NewClient(c.Addr(l), append(c.DialOptions(c.Credentials(pki.RoleOperator)),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	stream, err := shoalpb.NewControlClient(conn).Watch(t.Context(), &shoalpb.WatchRequest{
		Selectors: []*shoalpb.WatchSelector{{Kind: "node"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	// Each change carries 2 KiB of labels: 500 of them are far more
	// than the stream's windows and the manager's buffer of batches.
	big := strings.Repeat("x", 2048)
	raft := c.Manager(l).Raft()
	var lastIndex uint64
	for i := range 500 {
		resp, err := raft.Apply(t.Context(), raftstore.UpsertNode{Node: &api.Node{ID: fmt.Sprintf("slow-%04d", i),
			Hostname: fmt.Sprintf("slow-%04d", i), Role: api.RoleWorker, Labels: map[string]string{"pad": big}, UpdatedAt: time.Now()}})
		if err != nil {
			t.Fatalf("write %d while a watcher does not read: %v", i, err)
		}
		lastIndex = resp.Index
	}
	if got := raft.State().Read().Index(); got < lastIndex {
		t.Fatalf("the state applied up to %d, the last write committed at %d", got, lastIndex)
	}
	// Now read: what was buffered, then the signal.
	var prev uint64
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("stream ended with %v before a resync message", err)
		}
		if m.GetIndex() < prev {
			t.Fatalf("message at %d after %d", m.GetIndex(), prev)
		}
		prev = m.GetIndex()
		if m.GetResyncRequired() {
			if !strings.Contains(m.GetResyncReason(), "behind") {
				t.Fatalf("resync reason %q does not say the watcher fell behind", m.GetResyncReason())
			}
			break
		}
	}
	if _, err := stream.Recv(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("after the resync message: %v, want ResourceExhausted", err)
	}
	if prev >= lastIndex {
		t.Fatalf("the dropped watcher was brought to %d, yet writes went on to %d", prev, lastIndex)
	}
}

// TestWatchTooOldIndex: an index whose changes are forgotten gets a resync.
func TestWatchTooOldIndex(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	l := c.WaitLeader(waitTimeout)
	c.Manager(l).Raft().State().SetHistoryLimit(4)
	writeNodes(t, c, 0, 10)
	stream, err := c.Client(l).Watch(t.Context(), &shoalpb.WatchRequest{SinceIndex: 1})
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.Recv()
	if err != nil || !m.GetResyncRequired() || m.GetHistoryFloor() <= 1 {
		t.Fatalf("watch from index 1 after the history moved on: %v, %v; want a resync message with the floor", m, err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.OutOfRange {
		t.Fatalf("after the resync message: %v, want OutOfRange", err)
	}
}

// TestWatchSelectors: the snapshot and the changes pass the selectors.
func TestWatchSelectors(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	l := c.WaitLeader(waitTimeout)
	cl := c.Client(l)
	for _, n := range []struct{ id, zone string }{{"n-alpha", "a"}, {"n-beta", "b"}} {
		apply(t, c, raftstore.UpsertNode{Node: &api.Node{ID: n.id, Hostname: n.id, Role: api.RoleWorker,
			Labels: map[string]string{"zone": n.zone}, UpdatedAt: time.Now()}})
	}
	web := spec("web")
	web.Replicas = 0
	web.Labels = map[string]string{"tier": "front"}
	if _, err := cl.CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: web}); err != nil {
		t.Fatal(err)
	}
	db := spec("db")
	db.Replicas = 0
	if _, err := cl.CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: db}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sel  []*shoalpb.WatchSelector
		want string
	}{
		{"node label", []*shoalpb.WatchSelector{{Kind: "node", Labels: []string{"zone=b"}}}, "node n-beta"},
		{"label key alone", []*shoalpb.WatchSelector{{Labels: []string{"tier"}}}, "service web"},
		{"service by name", []*shoalpb.WatchSelector{{Kind: "service", Service: "db"}}, "service db"},
		{"either selector", []*shoalpb.WatchSelector{{Kind: "service", Service: "db"}, {Node: "n-al"}}, "service db,node n-alpha"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			stream, err := cl.Watch(ctx, &shoalpb.WatchRequest{Selectors: tc.sel})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for {
				m, err := stream.Recv()
				if err != nil {
					t.Fatal(err)
				}
				for _, ch := range m.GetChanges() {
					got = append(got, ch.GetKind()+" "+ch.GetNode().GetHostname()+ch.GetService().GetSpec().GetName())
				}
				if m.GetSnapshotDone() {
					break
				}
			}
			if s := strings.Join(got, ","); s != tc.want {
				t.Fatalf("snapshot through %v: %s, want %s", tc.sel, s, tc.want)
			}
		})
	}
	t.Run("bad kind", func(t *testing.T) {
		stream, err := cl.Watch(t.Context(), &shoalpb.WatchRequest{Selectors: []*shoalpb.WatchSelector{{Kind: "pods"}}})
		if err == nil {
			_, err = stream.Recv()
		}
		wantCode(t, err, codes.InvalidArgument, "selectors[0].kind", "pods")
	})
}

// TestWatchRefusesWorkers: a worker's certificate may not watch.
func TestWatchRefusesWorkers(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	l := c.WaitLeader(waitTimeout)
	conn, err := grpc.NewClient(c.Addr(l), c.DialOptions(c.Credentials(pki.RoleWorker))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	stream, err := shoalpb.NewControlClient(conn).Watch(t.Context(), &shoalpb.WatchRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if errors.Is(err, io.EOF) || status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a worker's watch: %v, want PermissionDenied", err)
	}
}
