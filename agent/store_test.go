package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/poll"
)

// TestTaskStoreSkipsRepeats: a record that repeats the file (the same
// assignment sent again on a reconnect, with only the leader's copy of the
// status newer) leaves the file alone; a new local status or a new desired
// state is written.
func TestTaskStoreSkipsRepeats(t *testing.T) {
	dir := t.TempDir()
	s, err := openTaskStore(dir, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	running := api.TaskStatus{State: api.TaskRunning, Message: "started", Timestamp: time.Unix(100, 0)}
	task := &api.Task{ID: "t1", ServiceID: "s1", Slot: 1, DesiredState: api.TaskRunning, Status: running, UpdatedAt: time.Unix(101, 0)}
	s.put(task, running)
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, tasksFile)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}

	resent := *task
	resent.Status.Message, resent.UpdatedAt = "the leader's copy", time.Unix(200, 0)
	s.put(&resent, running)
	s.put(task, running)
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("repeated records rewrote the task file (stat: %v)", err)
	}

	for name, put := range map[string]func(){
		"a new local status": func() {
			s.put(task, api.TaskStatus{State: api.TaskFailed, Message: "exit 1", Timestamp: time.Unix(300, 0)})
		},
		"a new desired state": func() {
			stop := *task
			stop.DesiredState = api.TaskShutdown
			s.put(&stop, running)
		},
	} {
		put()
		if err := s.flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%s was not written: %v", name, err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTaskStoreOutlivesAFailedWrite: a task file that cannot be written (a
// full disk, no file descriptor left: here, a directory in the way) does
// not stop the store; the write is tried again until it succeeds.
func TestTaskStoreOutlivesAFailedWrite(t *testing.T) {
	dir := t.TempDir()
	s, err := openTaskStore(dir, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	block := filepath.Join(dir, tasksFile+".tmp")
	if err := os.Mkdir(block, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var logged lockedBuffer
	go func() { done <- s.run(ctx, slog.New(slog.NewTextHandler(&logged, nil))) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	running := api.TaskStatus{State: api.TaskRunning, Timestamp: time.Unix(100, 0)}
	s.put(&api.Task{ID: "t1", ServiceID: "s1", Slot: 1, DesiredState: api.TaskRunning}, running)
	poll.Until(t, 5*time.Second, func() error {
		if !strings.Contains(logged.String(), "could not write the task file") {
			return errors.New("no failed write logged yet")
		}
		return nil
	})
	select {
	case err := <-done:
		t.Fatalf("the store stopped on a failed write: %v", err)
	default:
	}
	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, func() error {
		_, err := os.Stat(filepath.Join(dir, tasksFile))
		return err
	})
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTaskFileHoldsEachSpecOnce: the replicas of one spec version are
// written with the spec once and read back with it; a file that holds the
// spec in every record (as written before) reads as well.
func TestTaskFileHoldsEachSpecOnce(t *testing.T) {
	dir := t.TempDir()
	s, err := openTaskStore(dir, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	v1 := &api.ServiceSpec{Name: "web", Image: "img:1", Command: []string{"serve", "--port", "8080"}}
	v2 := &api.ServiceSpec{Name: "web", Image: "img:2"}
	running := api.TaskStatus{State: api.TaskRunning}
	for i, spec := range []*api.ServiceSpec{v1, v1, v1, v2} {
		version := uint64(1)
		if spec == v2 {
			version = 2
		}
		s.put(&api.Task{ID: fmt.Sprint("t", i), ServiceID: "s1", SpecVersion: version, Spec: spec, DesiredState: api.TaskRunning}, running)
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, tasksFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"img:1"`); n != 1 {
		t.Fatalf("the file holds spec 1 %d times, want once:\n%s", n, b)
	}
	if s.records["t0"].Task.Spec == nil {
		t.Fatal("writing the file took the spec out of the record in memory")
	}
	again, err := openTaskStore(dir, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]*api.ServiceSpec{"t0": v1, "t2": v1, "t3": v2} {
		if got := again.records[id].Task.Spec; !reflect.DeepEqual(got, want) {
			t.Errorf("task %s read back with spec %+v, want %+v", id, got, want)
		}
	}

	// A file of the earlier format: the spec inline, no table of specs.
	old := filepath.Join(t.TempDir(), tasksFile)
	inline := `{"node_id":"node-1","tasks":[{"task":{"id":"t9","service_id":"s1","spec_version":1,"spec":{"name":"web","image":"img:1"},"desired_state":"running"},"status":{"state":"running"}}]}`
	if err := os.WriteFile(old, []byte(inline), 0o600); err != nil {
		t.Fatal(err)
	}
	prev, err := openTaskStore(filepath.Dir(old), "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := prev.records["t9"].Task.Spec; got == nil || got.Image != "img:1" {
		t.Fatalf("a record of the earlier format read back with spec %+v", got)
	}
}
