package ctl

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// TestTaskTableHealth: service ps shows a task's health next to its state,
// and with --no-trunc the pinned image and the newest probe.
func TestTaskTableHealth(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	task := func(id, health string, probes ...*shoalpb.ProbeResult) *shoalpb.Task {
		return &shoalpb.Task{
			Id: id, ServiceName: "web", Slot: 1, NodeId: "n1", DesiredState: "running",
			Spec:   &shoalpb.ServiceSpec{Image: "busybox:1.36", ImageDigest: "sha256:0123"},
			Status: &shoalpb.TaskStatus{State: "running", Health: health, HealthLog: probes, Timestamp: timestamppb.New(now.Add(-time.Minute))},
		}
	}
	tasks := []*shoalpb.Task{
		task("t1", "healthy", &shoalpb.ProbeResult{ExitCode: 0, Output: "ok\n"}),
		task("t2", "starting"),
		task("t3", ""),
	}
	tasks[1].Slot, tasks[2].Slot = 2, 3
	var short, long bytes.Buffer
	if err := writeTaskTable(&short, tasks, map[string]string{"n1": "host-1"}, now, false); err != nil {
		t.Fatal(err)
	}
	if err := writeTaskTable(&long, tasks, map[string]string{"n1": "host-1"}, now, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Running (healthy) About a minute ago", "Running (starting) About a minute ago", "Running About a minute ago"} {
		if !strings.Contains(short.String(), want) {
			t.Errorf("service ps lacks %q:\n%s", want, short.String())
		}
	}
	for _, want := range []string{"LAST PROBE", `"exit 0: ok"`, "busybox:1.36@sha256:0123"} {
		if !strings.Contains(long.String(), want) {
			t.Errorf("service ps --no-trunc lacks %q:\n%s", want, long.String())
		}
	}
	if strings.Contains(short.String(), "LAST PROBE") {
		t.Errorf("service ps without --no-trunc shows the probe column:\n%s", short.String())
	}
}
