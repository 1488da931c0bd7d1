package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/poll"
	"github.com/shoal-sched/shoal/raftstore"
)

// syncRecorder is entryRecorder for an orchestrator in its own goroutine:
// it also keeps every response, to check that the FSM refused nothing.
type syncRecorder struct {
	next raftstore.Applier

	mu        sync.Mutex
	sizes     []int
	responses []raftstore.Response
}

func (r *syncRecorder) Apply(ctx context.Context, cmd raftstore.Command) (raftstore.Response, error) {
	b, err := raftstore.EncodeCommand(cmd)
	if err != nil {
		return raftstore.Response{}, err
	}
	resp, err := r.next.Apply(ctx, cmd)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sizes = append(r.sizes, len(b))
	if err == nil {
		r.responses = append(r.responses, resp)
	}
	return resp, err
}

// refusals lists what the FSM refused in the recorded responses.
func (r *syncRecorder) refusals() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, resp := range r.responses {
		results := []raftstore.BatchResult{{Value: resp.Value}}
		if b, ok := resp.Value.([]raftstore.BatchResult); ok {
			results = b
		}
		for _, res := range results {
			switch v := res.Value.(type) {
			case raftstore.AssignResult:
				for _, p := range v.Refused {
					out = append(out, "assign "+p.TaskID+": "+p.Reason)
				}
			case raftstore.WriteTasksResult:
				for _, p := range v.Refused {
					out = append(out, "update "+p.TaskID+": "+p.Reason)
				}
			}
			if res.Err != nil {
				out = append(out, res.Err.Error())
			}
		}
	}
	return out
}

// largeSpec is a service spec of about 100 KB: 100 environment variables
// of 1 KB, as a large configuration passed through env would be.
func largeSpec(name string, replicas uint64) api.ServiceSpec {
	spec := replicated(name, replicas)
	for i := range 100 {
		spec.Env = append(spec.Env, fmt.Sprintf("CONFIG_%03d=%s", i, strings.Repeat(string(rune('a'+i%26)), 1000)))
	}
	spec.Args = []string{"--serve", "--config-from-env"}
	return spec
}

// openMember starts (or restarts) a one-member Raft cluster in dir on
// loopback and waits until it leads.
func openMember(t *testing.T, dir, addr string) *raftstore.Node {
	t.Helper()
	n, err := raftstore.Open(raftstore.Config{
		ID: "m0", DataDir: dir, RaftAddr: addr, Bootstrap: true,
		CommitTimeout: 5 * time.Millisecond, SnapshotThreshold: 4, SnapshotInterval: 200 * time.Millisecond,
		Logger: testLogger(t).With("member", "m0"),
	})
	if err != nil {
		t.Fatalf("open member: %v", err)
	}
	poll.Until(t, clusterTimeout, func() error {
		if !n.IsLeader() {
			return errors.New("the member does not lead yet")
		}
		return nil
	})
	return n
}

// TestLargeSpecManyReplicasThroughRaft: 2,000 replicas of a 100 KB spec
// are created and placed through a real Raft member over TCP on loopback,
// every entry under raftstore.MaxEntryBytes (a copy of the spec in every
// task made one entry of about 200 MB, which raft-wal cannot read back).
// The member then restarts from its data dir (snapshot and log) and holds
// everything, specs included.
func TestLargeSpecManyReplicasThroughRaft(t *testing.T) {
	const replicas = 2000
	dir, addr := t.TempDir(), freeAddr(t)
	n := openMember(t, dir, addr)
	closed := false
	t.Cleanup(func() {
		if !closed {
			n.Close() //nolint:errcheck // the test failed already
		}
	})
	var nodes []raftstore.Command
	for i := range replicas/40 + 5 {
		id := fmt.Sprintf("node-%03d", i)
		nodes = append(nodes, raftstore.UpsertNode{Node: &api.Node{ID: id, Hostname: id, Role: api.RoleWorker,
			Status: api.NodeReady, Resources: api.Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30}}})
	}
	if _, err := n.Apply(t.Context(), raftstore.Batch{Commands: nodes}); err != nil {
		t.Fatal(err)
	}
	svc := &api.Service{ID: "svc-big", Spec: largeSpec("big", replicas), CreatedAt: time.Now()}
	if _, err := n.Apply(t.Context(), raftstore.CreateService{Service: svc}); err != nil {
		t.Fatal(err)
	}

	rec := &syncRecorder{next: n}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- New(n.State(), rec, Options{Logger: testLogger(t)}).Run(ctx) }()
	waitTasks(t, n.State(), svc.ID, api.TaskAssigned, replicas, clusterTimeout)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("orchestrator: %v", err)
	}
	if why := rec.refusals(); len(why) > 0 {
		t.Fatalf("the FSM refused %d changes, first: %s", len(why), why[0])
	}
	largest := 0
	for _, s := range rec.sizes {
		largest = max(largest, s)
	}
	t.Logf("%d pass entries, the largest %d bytes (limit %d)", len(rec.sizes), largest, raftstore.MaxEntryBytes)
	if largest > maxEntryBytes {
		t.Errorf("a pass entry of %d bytes, over the budget of %d", largest, maxEntryBytes)
	}
	want := describeTasks(t, n.State().Read(), svc.ID)
	waitSnapshot(t, dir)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true

	checkLogEntries(t, filepath.Join(dir, "raft.db"))

	n = openMember(t, dir, addr)
	closed = false
	waitTasks(t, n.State(), svc.ID, api.TaskAssigned, replicas, clusterTimeout)
	if got := describeTasks(t, n.State().Read(), svc.ID); got != want {
		t.Fatalf("after the restart the store differs:\n got %.500s\nwant %.500s", got, want)
	}
}

// describeTasks renders a service's tasks and the spec each reads.
func describeTasks(t *testing.T, v *raftstore.View, serviceID string) string {
	t.Helper()
	var b strings.Builder
	for _, task := range v.TasksByService(serviceID) {
		spec := v.ServiceSpec(task.ServiceID, task.SpecVersion)
		if spec == nil {
			t.Fatalf("task %s: spec version %d not stored", task.ID, task.SpecVersion)
		}
		if task.HasSpec() {
			t.Fatalf("task %s stored with a copy of its spec", task.ID)
		}
		fmt.Fprintf(&b, "%s slot=%d node=%s v%d %s env=%d/%d\n", task.ID, task.Slot, task.NodeID,
			task.SpecVersion, task.Status.State, len(spec.Env), len(strings.Join(spec.Env, "")))
	}
	return b.String()
}

// waitSnapshot waits until the member has written a snapshot, so that the
// restart restores one (spec records included) before replaying the log.
func waitSnapshot(t *testing.T, dir string) {
	t.Helper()
	poll.Until(t, clusterTimeout, func() error {
		if entries, _ := os.ReadDir(filepath.Join(dir, "snapshots")); len(entries) == 0 {
			return errors.New("no snapshot written yet")
		}
		return nil
	})
}

// checkLogEntries reads the closed member's log back as a restart does and
// checks every entry: readable, under the limit, a command that decodes.
func checkLogEntries(t *testing.T, logFile string) {
	t.Helper()
	w, err := raftboltdb.New(raftboltdb.Options{Path: logFile, BoltOptions: &bbolt.Options{ReadOnly: true, Timeout: time.Second}})
	if err != nil {
		t.Fatalf("open the log: %v", err)
	}
	defer func() {
		if err := w.Close(); err != nil {
			t.Errorf("close the log: %v", err)
		}
	}()
	first, err := w.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := w.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	largest := 0
	for i := first; i <= last && i > 0; i++ {
		var l raft.Log
		if err := w.GetLog(i, &l); err != nil {
			t.Fatalf("log entry %d: %v", i, err)
		}
		largest = max(largest, len(l.Data))
		if len(l.Data) > raftstore.MaxEntryBytes {
			t.Errorf("log entry %d is %d bytes, over the limit of %d", i, len(l.Data), raftstore.MaxEntryBytes)
		}
		if l.Type == raft.LogCommand {
			if _, err := raftstore.DecodeCommand(l.Data); err != nil {
				t.Errorf("log entry %d: %v", i, err)
			}
		}
	}
	t.Logf("log entries %d..%d, the largest %d bytes", first, last, largest)
	if last < first+3 {
		t.Fatalf("log holds entries %d..%d: too few to hold the passes", first, last)
	}
}
