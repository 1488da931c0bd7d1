package api

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRolloutBatches(t *testing.T) {
	tests := []struct {
		n    int
		cfg  UpdateConfig
		want []int
	}{
		{6, UpdateConfig{Parallelism: 2}, []int{2, 2, 2}},
		{5, UpdateConfig{Parallelism: 2}, []int{2, 2, 1}},
		{6, UpdateConfig{Parallelism: 0}, []int{6}},
		{6, UpdateConfig{Parallelism: 10}, []int{6}},
		{6, UpdateConfig{Parallelism: 2, Canary: 1}, []int{1, 2, 2, 1}},
		{0, UpdateConfig{Parallelism: 2}, nil},
	}
	for _, tt := range tests {
		if got := RolloutBatches(tt.n, tt.cfg); !slices.Equal(got, tt.want) {
			t.Errorf("RolloutBatches(%d, %+v) = %v, want %v", tt.n, tt.cfg, got, tt.want)
		}
	}
}

func TestRolloutFailure(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	monitor := 5 * time.Second
	spec := &ServiceSpec{}
	task := func(st TaskState, started, at time.Duration, exit int32) *Task {
		tk := &Task{ID: "t", Slot: 1, Status: TaskStatus{State: st, Timestamp: t0.Add(at), ExitCode: exit}}
		if started >= 0 {
			tk.StartedAt = t0.Add(started)
		}
		return tk
	}
	tests := []struct {
		name string
		t    *Task
		now  time.Duration
		want string // part of why ("" : no failure)
	}{
		{"failed before it ran", task(TaskFailed, -1, time.Second, 1), 2 * time.Second, "exit code 1"},
		{"exited within the window", task(TaskComplete, 0, 2*time.Second, 0), 3 * time.Second, "complete"},
		{"failed after the window", task(TaskFailed, 0, 6*time.Second, 1), 7 * time.Second, ""},
		{"shut down", task(TaskShutdown, 0, time.Second, 0), 2 * time.Second, ""},
		{"orphaned", task(TaskOrphaned, 0, time.Second, 0), 2 * time.Second, ""},
		{"running and up", task(TaskRunning, 0, 0, 0), 6 * time.Second, ""},
	}
	for _, tt := range tests {
		why, _ := RolloutFailure(tt.t, spec, monitor, t0.Add(tt.now))
		if (tt.want == "") != (why == "") || !strings.Contains(why, tt.want) {
			t.Errorf("%s: why %q, want %q", tt.name, why, tt.want)
		}
	}
	// Running, but not healthy for the whole window.
	hc := &ServiceSpec{Healthcheck: &Healthcheck{Test: []string{"CMD", "true"}, Interval: Duration(time.Second)}}
	sick := task(TaskRunning, 0, 0, 0)
	if why, next := RolloutFailure(sick, hc, monitor, t0.Add(time.Second)); why != "" || !next.Equal(t0.Add(monitor)) {
		t.Errorf("within the window: why %q next %s, want none until %s", why, next, t0.Add(monitor))
	}
	if why, _ := RolloutFailure(sick, hc, monitor, t0.Add(monitor)); !strings.Contains(why, "not up within 5s") {
		t.Errorf("after the window: why %q", why)
	}
}

func TestFailureRatioExceeded(t *testing.T) {
	tests := []struct {
		failures, total int
		ratio           float64
		want            bool
	}{
		{0, 6, 0, false}, {1, 6, 0, true}, {1, 6, 0.2, false}, {2, 6, 0.2, true}, {6, 6, 1, false},
	}
	for _, tt := range tests {
		if got := FailureRatioExceeded(tt.failures, tt.total, tt.ratio); got != tt.want {
			t.Errorf("FailureRatioExceeded(%d, %d, %g) = %v", tt.failures, tt.total, tt.ratio, got)
		}
	}
}
