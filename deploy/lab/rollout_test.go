package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// TestLabRollout runs rolling updates on a lab of real containerd hosts: a
// start-first update of 6 replicas by 2 with a 1 s delay never has fewer
// than 6 running and goes batch by batch (from the task timestamps); an
// update to a command that exits 1 rolls back on its own, or pauses, and
// shoalctl service update says so with a non-zero exit.
func TestLabRollout(t *testing.T) {
	requireLabHost(t)
	cfg := Config{
		Dir:    t.TempDir(),
		Prefix: fmt.Sprintf("slr%d-", os.Getpid()%100000),
		BinDir: buildBinaries(t),
	}
	ctx, cancel := context.WithTimeout(t.Context(), labTimeout)
	defer cancel()
	t.Cleanup(func() {
		if err := Down(cfg, t.Logf); err != nil {
			t.Errorf("lab down: %v", err)
		}
		assertNothingLeft(t, cfg)
	})
	l, err := Up(ctx, cfg, t.Logf)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	if _, err := l.Deploy(ctx, io.Discard, labReplicas); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	c, err := l.dialManagers(true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	t.Run("start-first by 2", func(t *testing.T) { testLabStartFirst(ctx, t, l, c) })
	t.Run("failure rolls back", func(t *testing.T) { testLabFailure(ctx, t, l, c, "rollback", "rolled back to the previous spec") })
	t.Run("failure pauses", func(t *testing.T) { testLabFailure(ctx, t, l, c, "pause", "update paused") })
	t.Run("canary", func(t *testing.T) { testLabCanary(ctx, t, l, c) })
}

// testLabCanary: from the paused update, a new update with one canary
// stops with the canary beside the six old replicas; promote rolls the
// rest.
func testLabCanary(ctx context.Context, t *testing.T, l *Lab, c *client) {
	if out, err := l.ctlOut(ctx, "service", "rollback", "--timeout", "2m", DemoService); err != nil {
		t.Fatalf("rollback from the pause: %v\n%s", err, out)
	}
	out, err := l.ctlOut(ctx, "service", "update", "--timeout", "2m", "--env-add", "ROLL=canary",
		"--update-canary", "1", "--update-monitor", "1s", "--update-failure-action", "pause", DemoService)
	if err != nil || !strings.Contains(out, "awaiting promotion") {
		t.Fatalf("canary update: %v\n%s", err, out)
	}
	count := func() (canary, old int) {
		tasks, err := c.tasks(ctx, DemoService)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range tasks {
			if tk.GetStatus().GetState() != "running" || tk.GetDesiredState() != "running" {
				continue
			}
			if slices.Contains(tk.GetSpec().GetEnv(), "ROLL=canary") {
				canary++
			} else {
				old++
			}
		}
		return canary, old
	}
	if canary, old := count(); canary != 1 || old != labReplicas {
		t.Fatalf("waiting for promotion: %d canaries and %d old replicas run, want 1 and %d", canary, old, labReplicas)
	}
	if out, err := l.ctlOut(ctx, "service", "promote", "--timeout", "2m", DemoService); err != nil {
		t.Fatalf("promote: %v\n%s", err, out)
	}
	if canary, old := count(); canary != labReplicas || old != 0 {
		t.Errorf("after promote: %d new and %d old replicas run, want %d and 0", canary, old, labReplicas)
	}
}

// ctlOut runs shoalctl and returns its output and exit error.
func (l *Lab) ctlOut(ctx context.Context, args ...string) (string, error) {
	var out strings.Builder
	err := l.Ctl(ctx, &out, args...)
	return out.String(), err
}

func testLabStartFirst(ctx context.Context, t *testing.T, l *Lab, c *client) {
	out, err := l.ctlOut(ctx, "service", "update", "--timeout", "2m", "--env-add", "ROLL=1",
		"--update-parallelism", "2", "--update-delay", "1s", "--update-monitor", "1s", "--update-order", "start-first", DemoService)
	if err != nil {
		t.Fatalf("update: %v\n%s", err, out)
	}
	tasks, err := c.tasks(ctx, DemoService)
	if err != nil {
		t.Fatal(err)
	}
	var version uint64
	for _, tk := range tasks {
		version = max(version, tk.GetSpecVersion())
	}
	checkNeverBelow(t, tasks, labReplicas)
	checkBatches(t, tasks, version, 2, time.Second)
}

// checkNeverBelow replays the tasks' starts and ends: at no instant did
// fewer than want run.
func checkNeverBelow(t *testing.T, tasks []*shoalpb.Task, want int) {
	t.Helper()
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	var first time.Time
	for _, tk := range tasks {
		start := tk.GetStartedAt().AsTime()
		if tk.GetStartedAt() == nil {
			continue
		}
		edges = append(edges, edge{start, +1})
		if st := tk.GetStatus().GetState(); st != "running" {
			edges = append(edges, edge{tk.GetStatus().GetTimestamp().AsTime(), -1})
		}
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return b.delta - a.delta // a start and an end at the same instant: the start first
	})
	n, low := 0, want
	for i, e := range edges {
		n += e.delta
		if n >= want && first.IsZero() {
			first = e.at
		}
		if !first.IsZero() && i < len(edges) && n < low {
			low = n
		}
	}
	if low < want {
		t.Errorf("the running replicas fell to %d during the start-first update, want never below %d", low, want)
	}
}

// checkBatches checks that the tasks of version rolled at most size at a
// time with wait between (the rollout is a window of size slots, each
// freed once its task has been up for wait): when the k-th new task was
// created, at least k-size earlier ones had been up for wait. Start-first:
// each slot's old task ended only after its new task had started.
func checkBatches(t *testing.T, tasks []*shoalpb.Task, version uint64, size int, wait time.Duration) {
	t.Helper()
	var nu []*shoalpb.Task
	newOf := map[uint64]*shoalpb.Task{}
	for _, tk := range tasks {
		if tk.GetSpecVersion() == version {
			nu = append(nu, tk)
			newOf[tk.GetSlot()] = tk
		}
	}
	if len(nu) != labReplicas {
		t.Fatalf("%d tasks of version %d, want one per slot (%d)", len(nu), version, labReplicas)
	}
	slices.SortFunc(nu, func(a, b *shoalpb.Task) int { return a.GetCreatedAt().AsTime().Compare(b.GetCreatedAt().AsTime()) })
	for k, tk := range nu {
		created := tk.GetCreatedAt().AsTime()
		settled := 0
		for _, o := range nu[:k] {
			if o.GetStartedAt() != nil && !o.GetStartedAt().AsTime().Add(wait).After(created) {
				settled++
			}
		}
		if settled < k+1-size {
			t.Errorf("new task %d (slot %d) was created when only %d of the %d before it had been up for %s: more than %d in flight",
				k+1, tk.GetSlot(), settled, k, wait, size)
		}
	}
	for _, tk := range tasks {
		n := newOf[tk.GetSlot()]
		if tk.GetSpecVersion() >= version || n == nil || tk.GetStatus().GetState() == "running" {
			continue
		}
		if end := tk.GetStatus().GetTimestamp().AsTime(); end.Before(n.GetStartedAt().AsTime()) {
			t.Errorf("slot %d: the old task ended at %s, before its replacement started at %s (want start-first)",
				tk.GetSlot(), end.Format(time.StampMilli), n.GetStartedAt().AsTime().Format(time.StampMilli))
		}
	}
}

// testLabFailure updates to a command that exits 1 with action.
func testLabFailure(ctx context.Context, t *testing.T, l *Lab, c *client, action, says string) {
	before, err := c.tasks(ctx, DemoService)
	if err != nil {
		t.Fatal(err)
	}
	out, err := l.ctlOut(ctx, "service", "update", "--timeout", "2m", "--args", "false",
		"--update-parallelism", "2", "--update-delay", "0s", "--update-monitor", "2s", "--update-order", "stop-first",
		"--update-failure-action", action, "--rollback-parallelism", "2", "--rollback-monitor", "1s", DemoService)
	if err == nil || !strings.Contains(out, says) {
		t.Fatalf("update to a failing command (%s): err %v, want a non-zero exit saying %q\n%s", action, err, says, out)
	}
	tasks, err := c.tasks(ctx, DemoService)
	if err != nil {
		t.Fatal(err)
	}
	oldRunning := 0
	for _, b := range before {
		for _, tk := range tasks {
			if tk.GetId() == b.GetId() && tk.GetStatus().GetState() == "running" && tk.GetDesiredState() == "running" {
				oldRunning++
			}
		}
	}
	running := 0
	for _, tk := range tasks {
		if tk.GetStatus().GetState() == "running" && tk.GetDesiredState() == "running" {
			running++
			if args := strings.Join(tk.GetSpec().GetArgs(), " "); args == "false" && action == "rollback" {
				t.Errorf("task %s runs the failing command", tk.GetId())
			}
		}
	}
	switch action {
	case "rollback":
		if running != labReplicas {
			t.Errorf("%d replicas run after the rollback, want %d", running, labReplicas)
		}
		if oldRunning != labReplicas-2 {
			t.Errorf("%d tasks of before the update still run, want %d (only the first batch replaced)", oldRunning, labReplicas-2)
		}
	case "pause":
		if oldRunning != labReplicas-2 {
			t.Errorf("%d old replicas untouched after the pause, want %d (all beyond the first batch)", oldRunning, labReplicas-2)
		}
		out, err := l.ctlOut(ctx, "service", "inspect", "--pretty", DemoService)
		if err != nil || !strings.Contains(out, "paused") || !strings.Contains(out, "update paused:") {
			t.Errorf("inspect after the pause: %v\n%s", err, out)
		}
	}
}
