package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
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
