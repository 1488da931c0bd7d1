package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// benchTasks are n replicas of one service on a host, with a spec of the
// size a real one has (image, command, env, labels, a mount, a check).
func benchTasks(n int) []*api.Task {
	spec := &api.ServiceSpec{
		Name: "web", Image: "registry.example:5000/web:1.4.2", Command: []string{"/bin/web", "--port", "8080"},
		Env:    []string{"MODE=production", "LOG_LEVEL=info", "CACHE_SIZE=256m", "UPSTREAM=http://api:9000"},
		Labels: map[string]string{"team": "frontend", "tier": "web", "com.example.owner": "ops"},
		Mounts: []api.Mount{{Type: "volume", Source: "web-cache", Target: "/var/cache/web"}},
		Healthcheck: &api.Healthcheck{Test: []string{"CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"},
			Interval: api.Duration(5 * time.Second), Timeout: api.Duration(time.Second), Retries: 3},
		Mode: api.ModeReplicated, Replicas: 100,
	}
	out := make([]*api.Task, n)
	for i := range out {
		out[i] = &api.Task{ID: fmt.Sprintf("task%04d", i), ServiceID: "svc1", ServiceName: "web", Slot: uint64(i + 1),
			NodeID: "node1", SpecVersion: 3, Spec: spec.Clone(), DesiredState: api.TaskRunning,
			Status: api.TaskStatus{State: api.TaskRunning, Message: "started", Timestamp: time.Unix(100, 0)}}
	}
	return out
}

// BenchmarkTaskFileWrite writes the task file of a host with 20 replicas
// of one service: each spec once (shared), beside a spec in every record
// (inline, the format before: the same file, encoded without the table).
func BenchmarkTaskFileWrite(b *testing.B) {
	for _, tc := range []struct {
		name   string
		encode func(taskFile) ([]byte, error)
	}{
		{"shared", func(f taskFile) ([]byte, error) { f.shareSpecs(); return json.Marshal(f) }},
		{"inline", func(f taskFile) ([]byte, error) { return json.Marshal(f) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := taskFile{NodeID: "node1"}
			for _, t := range benchTasks(20) {
				f.Tasks = append(f.Tasks, taskRecord{Task: t, Status: t.Status})
			}
			path := filepath.Join(b.TempDir(), tasksFile)
			var size int
			b.ReportAllocs()
			for b.Loop() {
				data, err := tc.encode(f)
				if err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(path, data, 0o600); err != nil {
					b.Fatal(err)
				}
				size = len(data)
			}
			b.ReportMetric(float64(size), "file_bytes")
		})
	}
}

// BenchmarkRepeatedAssignment puts the same 20 assignments again, as a
// leader's resent set does: with the spec of a known version taken as
// known (skip-spec), beside comparing every field (deep).
func BenchmarkRepeatedAssignment(b *testing.B) {
	tasks, again := benchTasks(20), benchTasks(20)
	for _, tc := range []struct {
		name string
		same func(taskRecord, *api.Task, api.TaskStatus) bool
	}{
		{"skip-spec", sameRecord},
		{"deep", func(r taskRecord, t *api.Task, st api.TaskStatus) bool {
			a, c := *r.Task, *t
			a.Status, c.Status = api.TaskStatus{}, api.TaskStatus{}
			return reflect.DeepEqual(r.Status, st) && reflect.DeepEqual(a, c)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			recs := make([]taskRecord, len(tasks))
			for i, t := range tasks {
				recs[i] = taskRecord{Task: t, Status: t.Status}
			}
			for b.Loop() {
				for i, t := range again {
					if !tc.same(recs[i], t, t.Status) {
						b.Fatal("a repeated assignment compared as new")
					}
				}
			}
		})
	}
}
