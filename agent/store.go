package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/shoal-sched/shoal/api"
)

const (
	tasksFile = "tasks.json"
	// storeFlushEvery bounds how often the task file is rewritten (file
	// writes were most of an agent's CPU when it wrote every 50 ms). A file
	// that lags is safe: on a restart the runtime's listing and the
	// leader's copy of the task (merged forward by runner.update) fill in
	// what it missed, so a container is never started twice for it.
	storeFlushEvery = time.Second
)

// taskRecord is one assigned task as the agent last knew it.
type taskRecord struct {
	Task   *api.Task      `json:"task"`
	Status api.TaskStatus `json:"status"`
}

type taskFile struct {
	NodeID string       `json:"node_id"`
	Tasks  []taskRecord `json:"tasks"`
	// Specs holds each spec the tasks run once, by specKey; a record
	// whose spec is here leaves it out. The replicas of a service on one
	// host share a spec: encoding it for each of them was most of the
	// cost of a write. Files written before hold the spec in every record
	// and are read as they are.
	Specs map[string]*api.ServiceSpec `json:"specs,omitempty"`
}

// specKey names the spec of a task: one per service and version.
func specKey(t *api.Task) string { return fmt.Sprintf("%s@%d", t.ServiceID, t.SpecVersion) }

// shareSpecs moves the records' specs into f.Specs.
func (f *taskFile) shareSpecs() {
	for i, r := range f.Tasks {
		if r.Task.Spec == nil {
			continue
		}
		if f.Specs == nil {
			f.Specs = make(map[string]*api.ServiceSpec)
		}
		f.Specs[specKey(r.Task)] = r.Task.Spec
		bare := *r.Task
		bare.Spec = nil
		f.Tasks[i].Task = &bare
	}
}

// specOf is the spec f holds for a record that left it out (nil: none).
func (f *taskFile) specOf(t *api.Task) *api.ServiceSpec {
	if t.Spec != nil {
		return t.Spec
	}
	return f.Specs[specKey(t)]
}

// taskStore keeps the agent's assignment set in its data dir, so that a
// restarted agent knows which containers are its tasks and how far each got.
type taskStore struct {
	path   string
	nodeID string

	mu      sync.Mutex
	records map[string]taskRecord
	dirty   bool
	kick    chan struct{}
}

// openTaskStore reads the task file of dataDir (none is an empty set).
func openTaskStore(dataDir, nodeID string) (*taskStore, error) {
	s := &taskStore{
		path: filepath.Join(dataDir, tasksFile), nodeID: nodeID,
		records: make(map[string]taskRecord), kick: make(chan struct{}, 1),
	}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read task file: %w", err)
	}
	var f taskFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("task file %s is corrupt (remove it to start empty): %w", s.path, err)
	}
	if f.NodeID != "" && f.NodeID != nodeID {
		return nil, fmt.Errorf("task file %s belongs to node %s, not %s", s.path, f.NodeID, nodeID)
	}
	for _, r := range f.Tasks {
		if r.Task != nil && r.Task.ID != "" {
			r.Task.Spec = f.specOf(r.Task)
			s.records[r.Task.ID] = r
		}
	}
	return s, nil
}

// list returns the records sorted by task ID.
func (s *taskStore) list() []taskRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]taskRecord, 0, len(s.records))
	for _, r := range s.records {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Task.ID < out[j].Task.ID })
	return out
}

// put records t and its local status. A record that only repeats what the
// file holds is not written again: every reconnect sends each assignment
// anew, and a host should not rewrite its task file for nothing.
func (s *taskStore) put(t *api.Task, st api.TaskStatus) {
	s.mu.Lock()
	if old, ok := s.records[t.ID]; ok && sameRecord(old, t, st) {
		s.mu.Unlock()
		return
	}
	s.records[t.ID] = taskRecord{Task: t, Status: st}
	s.dirty = true
	s.mu.Unlock()
	s.signal()
}

// sameRecord reports whether r already holds t and st, leaving aside the
// leader's copy of the status and its commit time: they change with every
// report, and the file's own status is st.
func sameRecord(r taskRecord, t *api.Task, st api.TaskStatus) bool {
	// Most puts are a new status (a report): that is settled before the
	// task, spec included, is compared.
	if !reflect.DeepEqual(r.Status, st) {
		return false
	}
	if r.Task == t {
		return true
	}
	a, b := *r.Task, *t
	a.Status, b.Status = api.TaskStatus{}, api.TaskStatus{}
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	// A spec is fixed by its service and version (the managers keep one
	// spec per version, and a task names the one it runs): comparing two
	// copies of it field by field, for every assignment the leader sent
	// again, was a fifth of the CPU of agents taking 20 tasks each.
	if a.ServiceID == b.ServiceID && a.SpecVersion == b.SpecVersion && (a.Spec == nil) == (b.Spec == nil) {
		a.Spec = b.Spec
	}
	return reflect.DeepEqual(a, b)
}

func (s *taskStore) delete(id string) {
	s.mu.Lock()
	delete(s.records, id)
	s.dirty = true
	s.mu.Unlock()
	s.signal()
}

func (s *taskStore) signal() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run writes the file when it changed, at most every storeFlushEvery, and
// once more when ctx ends. A write that fails (a full disk, no file
// descriptor left) is tried again at the next turn: the records are in
// memory and the tasks run on; only a restart in between would miss them.
func (s *taskStore) run(ctx context.Context, log *slog.Logger) error {
	failing := false
	for {
		select {
		case <-ctx.Done():
			return s.flush()
		case <-s.kick:
		}
		switch err := s.flush(); {
		case err != nil:
			if !failing {
				log.Warn("could not write the task file; retrying", "err", err)
			}
			failing = true
			s.signal()
		case failing:
			log.Info("task file written again")
			failing = false
		}
		t := time.NewTimer(storeFlushEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return s.flush()
		case <-t.C:
		}
	}
}

// flush writes the records if they changed: a temporary file renamed over
// the old one, so a crash leaves either version whole.
func (s *taskStore) flush() error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	f := taskFile{NodeID: s.nodeID, Tasks: make([]taskRecord, 0, len(s.records))}
	for _, r := range s.records {
		f.Tasks = append(f.Tasks, r)
	}
	s.dirty = false
	s.mu.Unlock()
	if err := s.write(f); err != nil {
		s.mu.Lock()
		s.dirty = true // still to be written
		s.mu.Unlock()
		return err
	}
	return nil
}

func (s *taskStore) write(f taskFile) error {
	sort.Slice(f.Tasks, func(i, j int) bool { return f.Tasks[i].Task.ID < f.Tasks[j].Task.ID })
	f.shareSpecs()
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode task file: %w", err)
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write task file: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("replace task file: %w", err)
	}
	return nil
}

// counts returns how many records are in each reported state.
func (s *taskStore) counts() map[api.TaskState]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[api.TaskState]int)
	for _, r := range s.records {
		out[r.Status.State]++
	}
	return out
}
