package ctl

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/internal/poll"
)

// TestE2EServicePsWatch: service ps --watch prints the table, prints it
// again as tasks change (a scale up), and ends cleanly on interrupt.
func TestE2EServicePsWatch(t *testing.T) {
	e := startE2E(t, 1)
	e.mustRun("service", "create", "-d", "--replicas", "1", "--name", "pw", "busybox")

	ctx, cancel := context.WithCancel(t.Context())
	var out, errOut syncBuffer
	app := &App{Out: &out, Err: &errOut, Now: time.Now, Getenv: func(k string) string {
		switch k {
		case HostEnv:
			return e.host
		case CertPathEnv:
			return e.certDir
		}
		return ""
	}}
	done := make(chan int, 1)
	go func() { done <- Execute(ctx, app, []string{"service", "ps", "--watch", "pw"}) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	running := func(want int) func() error {
		return func() error {
			tables := strings.Split(out.String(), "\n\n")
			last := tables[len(tables)-1]
			got := 0
			for _, l := range strings.Split(last, "\n") {
				if strings.Count(l, "Running") == 2 { // desired and current
					got++
				}
			}
			if got != want || !strings.HasPrefix(last, "ID") {
				return fmt.Errorf("last table has %d running, want %d:\n%s\nstderr: %s", got, want, out.String(), errOut.String())
			}
			return nil
		}
	}
	poll.Until(t, 30*time.Second, running(1))
	e.mustRun("service", "scale", "-d", "pw=2")
	poll.Until(t, 30*time.Second, running(2))

	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("interrupted watch: exit %d, stderr %s", code, errOut.String())
	}
	done <- 0 // for the cleanup
	r := e.run("service", "ps", "--watch", "-q", "pw")
	if r.code == 0 || !strings.Contains(r.stderr, "--watch") {
		t.Fatalf("--watch -q: exit %d, stderr %s", r.code, r.stderr)
	}
}
