package ctl

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestE2EEventsWindow: events --since/--until reads the manager's watch
// history between two times and ends at --until; a since after until is
// refused by the manager naming both; a --since older than the history
// holds is said on stderr.
func TestE2EEventsWindow(t *testing.T) {
	e := startE2E(t, 0)
	t0 := time.Now()
	for _, name := range []string{"ev-a", "ev-b"} {
		e.mustRun("service", "create", "-d", "--replicas", "0", "--name", name, "busybox")
	}
	t1 := time.Now()
	unix := func(at time.Time) string { return fmt.Sprintf("%d.%09d", at.Unix(), at.Nanosecond()) }

	r := e.run("events", "--since", t0.Format(time.RFC3339Nano), "--until", unix(t1), "--filter", "type=service")
	if r.code != 0 || !strings.Contains(r.stdout, "service create") || !strings.Contains(r.stdout, "name=ev-a") ||
		!strings.Contains(r.stdout, "name=ev-b") || r.stderr != "" {
		t.Fatalf("events between the creates: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	out := e.mustRun("events", "--since", "1h", "--until", unix(t1), "--filter", "service=ev-b", "--filter", "type=service")
	if strings.Contains(out, "ev-a") || !strings.Contains(out, "name=ev-b") {
		t.Fatalf("filtered to ev-b:\n%s", out)
	}
	// A window before the creates holds none of them.
	out = e.mustRun("events", "--since", unix(t0.Add(-time.Hour)), "--until", unix(t0.Add(-time.Minute)))
	if out != "" {
		t.Fatalf("events an hour ago:\n%s", out)
	}

	// A live stream ends at --until.
	if r = e.run("events", "--until", unix(time.Now().Add(300*time.Millisecond))); r.code != 0 {
		t.Fatalf("events until soon: exit %d, stderr %s", r.code, r.stderr)
	}

	r = e.run("events", "--since", unix(t1), "--until", unix(t0))
	if r.code == 0 || !strings.Contains(r.stderr, "since_time "+t1.UTC().Format(time.RFC3339Nano)) ||
		!strings.Contains(r.stderr, "until_time "+t0.UTC().Format(time.RFC3339Nano)) {
		t.Fatalf("since after until: exit %d, stderr %s", r.code, r.stderr)
	}
	r = e.run("events", "--since", "yesterday")
	if r.code == 0 || !strings.Contains(r.stderr, `--since "yesterday"`) {
		t.Fatalf("bad --since: exit %d, stderr %s", r.code, r.stderr)
	}

	// Once the history has let the creates go, --since 1h says so.
	e.cluster.Manager(0).Raft().State().SetHistoryLimit(1)
	e.mustRun("service", "create", "-d", "--replicas", "0", "--name", "ev-c", "busybox")
	r = e.run("events", "--since", "1h", "--until", unix(time.Now()))
	if r.code != 0 || !strings.Contains(r.stderr, "reaches before the manager's history") || !strings.Contains(r.stderr, "after index") {
		t.Fatalf("history too short: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}
