package containerd

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/agent"
)

// numbered returns "stdout: <prefix> i" for i in [from, to].
func numbered(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("stdout: %s %d", prefix, i))
	}
	return out
}

func TestLogsTail(t *testing.T) {
	e := newEnv(t)
	task := e.task(t, "sh", "-c", "for i in $(seq 1 10); do echo line $i; done; head -c 40000 /dev/zero | tr '\\0' a")
	e.run(t, task)
	e.wait(t, task.ID)
	long := "stdout: " + strings.Repeat("a", 40000) // cut into pieces in the file, one line again
	all := append(numbered("line", 1, 10), long)
	cases := []struct {
		tail int64
		want []string
	}{
		{-1, all},
		{0, nil},
		{3, all[8:]},
		{100, all},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint("tail ", tc.tail), func(t *testing.T) {
			var got lines
			if err := e.rt.Logs(t.Context(), task.ID, agent.LogOptions{Tail: tc.tail}, &got); err != nil {
				t.Fatal(err)
			}
			if g := got.snapshot(); !slices.Equal(g, tc.want) {
				t.Fatalf("got %d lines %.200q, want %d lines", len(g), g, len(tc.want))
			}
		})
	}
}

func TestLogsFollowAcrossRotation(t *testing.T) {
	e := newEnv(t)
	e.opts.LogMaxBytes = 2000 // about 40 records per file
	e.rt = e.newRuntime(t)
	task := e.task(t, "sh", "-c", "for i in $(seq 1 150); do echo line $i; sleep 0.01; done")
	e.run(t, task)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got lines
	done := make(chan error, 1)
	go func() { done <- e.rt.Logs(ctx, task.ID, agent.LogOptions{Tail: -1, Follow: true}, &got) }()
	want := numbered("line", 1, 150)
	eventually(t, 30*time.Second, "150 followed lines", func() bool { return len(got.snapshot()) >= len(want) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow: %v", err)
	}
	if g := got.snapshot(); !slices.Equal(g, want) {
		t.Fatalf("followed %d lines, want 150 in order: %q", len(g), g)
	}

	// After the task, the files hold only the latest lines: the current
	// file and one rotated predecessor, within the size limit each.
	e.wait(t, task.ID)
	current, rotated := logPaths(e.rt.opts.LogDir, task.ID)
	for _, p := range []string{current, rotated} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > e.opts.LogMaxBytes {
			t.Fatalf("log file %s has %d bytes, over the %d limit", p, st.Size(), e.opts.LogMaxBytes)
		}
	}
	kept := e.logsOf(t, task.ID)
	if len(kept) == 0 || len(kept) >= 150 || !slices.Equal(kept, want[150-len(kept):]) {
		t.Fatalf("kept %d lines %q, want a suffix of the output", len(kept), kept)
	}
}
