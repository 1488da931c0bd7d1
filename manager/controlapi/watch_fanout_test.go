package controlapi_test

import (
	"context"
	"fmt"
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

// bigCluster starts one manager holding a service of n tasks, committed
// 1,000 to an entry as the orchestrator writes them.
func bigCluster(t testing.TB, n int) *managertest.Cluster {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	cl := c.Client(c.WaitLeader(waitTimeout))
	idle := spec("web")
	idle.Replicas = 0
	web, err := cl.CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: idle})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for from := 0; from < n; from += 1000 {
		var tasks []*api.Task
		for i := from; i < min(from+1000, n); i++ {
			tasks = append(tasks, &api.Task{ID: fmt.Sprintf("task-%05d", i), ServiceID: web.GetService().GetId(), ServiceName: "web",
				Slot: uint64(i + 1), SpecVersion: 1, DesiredState: api.TaskRunning, CreatedAt: now})
		}
		apply(t, c, raftstore.WriteTasks{Create: tasks, At: now})
	}
	return c
}

// stalledWatch opens a watch of every object on a connection of its own
// whose gRPC windows stay at 64 KiB, and reads its first message: the rest
// of a snapshot of thousands of tasks cannot fit in the windows, so until
// the caller reads on, the manager is held in the middle of sending it,
// as it is for a client on a slow link or a busy laptop.
// It returns the stream and the tasks of that first message.
func stalledWatch(t *testing.T, c *managertest.Cluster) (grpc.ServerStreamingClient[shoalpb.WatchMessage], int) {
	t.Helper()
	conn, err := grpc.NewClient(c.Addr(c.WaitLeader(waitTimeout)), append(c.DialOptions(c.Credentials(pki.RoleOperator)),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	stream, err := shoalpb.NewControlClient(conn).Watch(t.Context(), &shoalpb.WatchRequest{
		Selectors: []*shoalpb.WatchSelector{{Kind: "task"}, {Kind: "node", Node: "w-"}}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.Recv()
	if err != nil || !m.GetSnapshot() || m.GetSnapshotDone() {
		t.Fatalf("first message %v, %v: want the first part of a snapshot", m, err)
	}
	return stream, countTasks(m)
}

func countTasks(m *shoalpb.WatchMessage) int {
	n := 0
	for _, ch := range m.GetChanges() {
		if ch.GetTask() != nil {
			n++
		}
	}
	return n
}

// readSnapshotThenNodes reads the rest of the snapshot (with the first
// message's, it must hold every task) and then the changes until every node of want has arrived; it
// fails on a resync or a stream that ends.
func readSnapshotThenNodes(stream grpc.ServerStreamingClient[shoalpb.WatchMessage], first, tasks int, want []string) error {
	got, done, seen := map[string]bool{}, false, first
	for {
		m, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("the stream ended with %v", err)
		}
		if m.GetResyncRequired() {
			return fmt.Errorf("resync at %d: %s", m.GetIndex(), m.GetResyncReason())
		}
		if m.GetSnapshot() {
			seen += countTasks(m)
		}
		for _, ch := range m.GetChanges() {
			if n := ch.GetNode(); n != nil && !m.GetSnapshot() {
				got[fmt.Sprint(ch.GetIndex(), " ", n.GetId())] = true
			}
		}
		if m.GetSnapshotDone() {
			if seen != tasks {
				return fmt.Errorf("a snapshot of %d tasks, want %d", seen, tasks)
			}
			done = true
		}
		if !done {
			continue
		}
		missing := 0
		for _, w := range want {
			if !got[w] {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
	}
}

// TestWatchersOfABigClusterSeeTheChangesAfterTheirSnapshot: watchers of
// 10,000 tasks that take their time over the snapshot, while the cluster
// commits more batches of changes than a watcher may have outstanding,
// each still get the whole snapshot and then every change after it, with
// no resync. (When the subscription opened before the snapshot, its
// buffer filled while the snapshot was read, and every watcher of a busy
// large cluster was told to resync, read everything again, and again.)
func TestWatchersOfABigClusterSeeTheChangesAfterTheirSnapshot(t *testing.T) {
	const tasks, watchers = 10000, 8
	c := bigCluster(t, tasks)
	streams := make([]grpc.ServerStreamingClient[shoalpb.WatchMessage], watchers)
	first := make([]int, watchers)
	for i := range streams {
		streams[i], first[i] = stalledWatch(t, c)
	}
	// More batches than the 256 a subscription may hold, one per entry.
	want := writeNodes(t, c, 0, 300)
	errs := make([]error, watchers)
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Go(func() { errs[i] = readSnapshotThenNodes(s, first[i], tasks, want) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("watcher %d: %v", i, err)
		}
	}
}

// TestWatchTooSlowForTheHistory: a watcher that reads its snapshot so
// slowly that the history no longer holds the changes since is told to
// resync (OutOfRange: read the objects again), while the state applies
// every write.
func TestWatchTooSlowForTheHistory(t *testing.T) {
	c := bigCluster(t, 2000)
	c.Manager(c.WaitLeader(waitTimeout)).Raft().State().SetHistoryLimit(50)
	stream, _ := stalledWatch(t, c)
	writeNodes(t, c, 0, 100)
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("stream ended with %v before a resync message", err)
		}
		if m.GetResyncRequired() {
			if !strings.Contains(m.GetResyncReason(), "more slowly") {
				t.Fatalf("resync reason %q does not say the watcher read too slowly", m.GetResyncReason())
			}
			break
		}
	}
	if _, err := stream.Recv(); status.Code(err) != codes.OutOfRange {
		t.Fatalf("after the resync message: %v, want OutOfRange", err)
	}
}

// TestWatchFanOutOfABigCluster: 50 watchers of 10,000 tasks on one
// connection all read their snapshot and then see a change committed
// after they started.
func TestWatchFanOutOfABigCluster(t *testing.T) {
	const tasks, watchers = 10000, 50
	c := bigCluster(t, tasks)
	cl := c.Client(c.WaitLeader(waitTimeout))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		snapshot int
		err      error
	}
	results := make(chan result, watchers)
	ready := make(chan struct{}, watchers)
	for range watchers {
		go func() {
			stream, err := cl.Watch(ctx, &shoalpb.WatchRequest{Selectors: []*shoalpb.WatchSelector{{Kind: "task"}, {Kind: "node", Node: "w-"}}})
			if err != nil {
				results <- result{err: err}
				return
			}
			n := 0
			for {
				m, err := stream.Recv()
				switch {
				case err != nil:
					results <- result{n, err}
					return
				case m.GetResyncRequired():
					results <- result{n, fmt.Errorf("resync: %s", m.GetResyncReason())}
					return
				}
				if m.GetSnapshot() {
					n += countTasks(m)
				}
				for _, ch := range m.GetChanges() {
					if ch.GetNode().GetId() == "w-0000" {
						results <- result{n, nil}
						return
					}
				}
				if m.GetSnapshotDone() {
					ready <- struct{}{}
				}
			}
		}()
	}
	for range watchers {
		select {
		case <-ready:
		case r := <-results:
			t.Fatalf("a watcher ended before its snapshot was in: %d tasks, %v", r.snapshot, r.err)
		}
	}
	writeNodes(t, c, 0, 1)
	for i := range watchers {
		if r := <-results; r.err != nil || r.snapshot != tasks {
			t.Errorf("watcher %d: snapshot of %d tasks (want %d), %v", i, r.snapshot, tasks, r.err)
		}
	}
}
