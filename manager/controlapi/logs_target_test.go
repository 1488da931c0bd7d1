package controlapi_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// testLogsTaskAndSince: a task id (or a prefix of it) in place of the
// service gives that task's lines only; since leaves out older lines.
func testLogsTaskAndSince(t *testing.T, cl shoalpb.ControlClient, tasks map[string]*shoalpb.Task) {
	one := firstTask(tasks)
	tests := []struct {
		name  string
		req   *shoalpb.ServiceLogsRequest
		tasks int // tasks with lines
		lines int // lines in all
	}{
		{"task id", &shoalpb.ServiceLogsRequest{Service: one.GetId(), Tail: -1}, 1, 3},
		{"task id prefix", &shoalpb.ServiceLogsRequest{Service: one.GetId()[:10], Tail: -1}, 1, 3},
		{"since long ago", &shoalpb.ServiceLogsRequest{Service: "web", Tail: -1, Since: timestamppb.New(time.Now().Add(-time.Hour))}, 3, 9},
		{"since later", &shoalpb.ServiceLogsRequest{Service: "web", Tail: -1, Since: timestamppb.New(time.Now().Add(time.Hour))}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := cl.ServiceLogs(t.Context(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			lines, err := collect(stream)
			if err != nil {
				t.Fatalf("stream ended with %v after %d lines", err, len(lines))
			}
			got, errs := byTask(lines)
			if len(errs) > 0 || len(got) != tc.tasks || len(lines) != tc.lines {
				t.Fatalf("lines of %d tasks, %d lines, errors %v; want %d tasks, %d lines", len(got), len(lines), errs, tc.tasks, tc.lines)
			}
			if tc.tasks == 1 && got[one.GetId()] == nil {
				t.Fatalf("lines are not task %s's: %v", one.GetId(), got)
			}
		})
	}
}
