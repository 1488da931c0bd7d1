package lab

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// testHealthAndDigest: a service with a health command converges only once
// its tasks are healthy (shoalctl waits through api.TaskUp), every task
// runs the digest the leader resolved, and service ps says so.
func testHealthAndDigest(ctx context.Context, t *testing.T, l *Lab) {
	c, err := l.dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	var out strings.Builder
	if err := l.Ctl(ctx, &out, "service", "create", "--name", "hc", "--replicas", "3",
		"--reserve-memory", "16M", "--health-cmd", "test -e /tmp/ok && echo ok", "--health-interval", "200ms", "--health-start-period", "10s",
		l.Image(), "sh", "-c", "sleep 1; touch /tmp/ok; exec sleep 3600"); err != nil {
		t.Fatalf("create hc: %v\n%s", err, out.String())
	}
	defer func() {
		if err := l.Ctl(context.WithoutCancel(ctx), io.Discard, "service", "rm", "hc"); err != nil {
			t.Errorf("rm hc: %v", err)
		}
	}()
	// service create returned: the wait saw three healthy tasks.
	tasks, err := c.tasks(ctx, "hc")
	if err != nil {
		t.Fatal(err)
	}
	healthy, digest := 0, ""
	for _, tk := range tasks {
		st, spec := tk.GetStatus(), tk.GetSpec()
		if tk.GetDesiredState() != "running" {
			continue
		}
		if st.GetState() == "running" && st.GetHealth() == "healthy" {
			healthy++
		}
		if !strings.HasPrefix(spec.GetImageDigest(), "sha256:") || (digest != "" && spec.GetImageDigest() != digest) {
			t.Errorf("task %s runs image %s digest %q, want one resolved digest for all", tk.GetId(), spec.GetImage(), spec.GetImageDigest())
		}
		digest = spec.GetImageDigest()
	}
	if healthy != 3 {
		t.Fatalf("%d of 3 tasks running (healthy) after service create returned", healthy)
	}
	err = waitFor(ctx, 10*time.Second, func() error {
		var out strings.Builder
		if err := l.Ctl(ctx, &out, "service", "ps", "--no-trunc", "hc"); err != nil {
			return err
		}
		if n := strings.Count(out.String(), "Running (healthy)"); n != 3 || !strings.Contains(out.String(), "@"+digest) {
			return fmt.Errorf("service ps shows %d healthy tasks, pinned to %s:\n%s", n, digest, out.String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
