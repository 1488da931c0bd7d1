package api

import (
	"strings"
	"testing"
	"time"
)

func TestTaskUp(t *testing.T) {
	check := &ServiceSpec{Healthcheck: &Healthcheck{Test: []string{"CMD", "true"}}}
	off := &ServiceSpec{Healthcheck: &Healthcheck{Test: []string{"NONE"}}}
	plain := &ServiceSpec{}
	task := func(st TaskState, h HealthState) *Task {
		return &Task{Status: TaskStatus{State: st, Health: h}}
	}
	cases := []struct {
		name string
		t    *Task
		spec *ServiceSpec
		want bool
	}{
		{"nil task", nil, plain, false},
		{"starting, no check", task(TaskStarting, HealthNone), plain, false},
		{"running, no check", task(TaskRunning, HealthNone), plain, true},
		{"running, no spec known", task(TaskRunning, HealthNone), nil, true},
		{"running, check, no report yet", task(TaskRunning, HealthNone), check, false},
		{"running, check starting", task(TaskRunning, HealthStarting), check, false},
		{"running, check healthy", task(TaskRunning, HealthHealthy), check, true},
		{"running, check unhealthy", task(TaskRunning, HealthUnhealthy), check, false},
		{"running, check off", task(TaskRunning, HealthNone), off, true},
		{"running, image check starting", task(TaskRunning, HealthStarting), plain, false},
		{"running, image check healthy", task(TaskRunning, HealthHealthy), plain, true},
		{"complete, healthy", task(TaskComplete, HealthHealthy), check, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := TaskUp(c.t, c.spec); got != c.want {
				t.Fatalf("TaskUp = %v, want %v", got, c.want)
			}
		})
	}
}

func TestAppendProbeBounds(t *testing.T) {
	var log []ProbeResult
	for i := range MaxHealthLog + 3 {
		log = AppendProbe(log, ProbeResult{ExitCode: i, Output: strings.Repeat("x", MaxProbeOutput+10)})
	}
	if len(log) != MaxHealthLog {
		t.Fatalf("len = %d, want %d", len(log), MaxHealthLog)
	}
	if log[len(log)-1].ExitCode != MaxHealthLog+2 || log[0].ExitCode != 3 {
		t.Fatalf("kept %d..%d, want the newest", log[0].ExitCode, log[len(log)-1].ExitCode)
	}
	if len(log[0].Output) != MaxProbeOutput {
		t.Fatalf("output %d bytes, want %d", len(log[0].Output), MaxProbeOutput)
	}
}

func TestTaskStatusEqual(t *testing.T) {
	now := time.Unix(100, 0)
	a := TaskStatus{State: TaskRunning, Health: HealthHealthy, HealthLog: []ProbeResult{{Start: now, End: now, Output: "ok"}}}
	b := a
	b.HealthLog = []ProbeResult{{Start: now, End: now, Output: "ok"}}
	if !a.Equal(b) {
		t.Fatal("equal statuses differ")
	}
	b.HealthLog[0].ExitCode = 1
	if a.Equal(b) {
		t.Fatal("different probe results compare equal")
	}
}

func TestImageRef(t *testing.T) {
	const d = "sha256:abc"
	cases := map[string]string{
		"busybox":                     "busybox@" + d,
		"busybox:1.36":                "busybox@" + d,
		"10.0.0.1:5000/lab/busybox:v": "10.0.0.1:5000/lab/busybox@" + d,
		"10.0.0.1:5000/lab/busybox":   "10.0.0.1:5000/lab/busybox@" + d,
		"busybox@sha256:def":          "busybox@sha256:def",
	}
	for img, want := range cases {
		s := ServiceSpec{Image: img, ImageDigest: d}
		if got := s.ImageRef(); got != want {
			t.Errorf("ImageRef(%q) = %q, want %q", img, got, want)
		}
	}
	if got := (&ServiceSpec{Image: "a:1"}).ImageRef(); got != "a:1" {
		t.Errorf("unpinned ImageRef = %q", got)
	}
}
