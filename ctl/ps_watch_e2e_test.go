package ctl

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/internal/poll"
)

// psWatch is a `… ps --watch` running against an e2e cluster.
type psWatch struct {
	out, errOut *syncBuffer
	stop        func() int // interrupts the watch; its exit code
}

// startPsWatch runs shoalctl with args until stop (or the test's end).
func startPsWatch(t *testing.T, e *e2e, args ...string) *psWatch {
	ctx, cancel := context.WithCancel(t.Context())
	w := &psWatch{out: &syncBuffer{}, errOut: &syncBuffer{}}
	app := &App{Out: w.out, Err: w.errOut, Now: time.Now, Getenv: func(k string) string {
		switch k {
		case HostEnv:
			return e.host
		case CertPathEnv:
			return e.certDir
		}
		return ""
	}}
	code := make(chan int, 1)
	go func() { code <- Execute(ctx, app, args) }()
	w.stop = sync.OnceValue(func() int {
		cancel()
		return <-code
	})
	t.Cleanup(func() { w.stop() })
	return w
}

// lastTable is the table the watch printed last.
func (w *psWatch) lastTable() string {
	tables := strings.Split(w.out.String(), "\n\n")
	return tables[len(tables)-1]
}

// running waits until the last table has want running tasks (desired and
// current), and every row passes ok (nil: any).
func (w *psWatch) running(want int, ok func(row string) bool) func() error {
	return func() error {
		last := w.lastTable()
		got := 0
		for _, l := range strings.Split(last, "\n") {
			if strings.Count(l, "Running") == 2 {
				got++
			}
			if ok != nil && l != "" && !strings.HasPrefix(l, "ID") && !ok(l) {
				return fmt.Errorf("row %q should not be listed:\n%s", l, w.out.String())
			}
		}
		if got != want || !strings.HasPrefix(last, "ID") {
			return fmt.Errorf("last table has %d running, want %d:\n%s\nstderr: %s", got, want, w.out.String(), w.errOut.String())
		}
		return nil
	}
}

// TestE2EServicePsWatch: service ps --watch prints the table, prints it
// again as tasks change (a scale up), and ends cleanly on interrupt.
func TestE2EServicePsWatch(t *testing.T) {
	e := startE2E(t, 1)
	e.mustRun("service", "create", "-d", "--replicas", "1", "--name", "pw", "busybox")

	w := startPsWatch(t, e, "service", "ps", "--watch", "pw")
	poll.Until(t, 30*time.Second, w.running(1, nil))
	e.mustRun("service", "scale", "-d", "pw=2")
	poll.Until(t, 30*time.Second, w.running(2, nil))
	if code := w.stop(); code != 0 {
		t.Fatalf("interrupted watch: exit %d, stderr %s", code, w.errOut.String())
	}
	r := e.run("service", "ps", "--watch", "-q", "pw")
	if r.code == 0 || !strings.Contains(r.stderr, "--watch") {
		t.Fatalf("--watch -q: exit %d, stderr %s", r.code, r.stderr)
	}
}

// TestE2ENodePsWatch: node ps --watch NODE follows the tasks of that node
// only, by its hostname, as a scale up lands more of them there.
func TestE2ENodePsWatch(t *testing.T) {
	e := startE2E(t, 2)
	e.mustRun("service", "create", "-d", "--replicas", "2", "--name", "np", "busybox")

	w := startPsWatch(t, e, "node", "ps", "--watch", "worker-1")
	onWorker1 := func(row string) bool { return strings.Contains(row, "worker-1") }
	poll.Until(t, 30*time.Second, w.running(1, onWorker1))
	e.mustRun("service", "scale", "-d", "np=4")
	poll.Until(t, 30*time.Second, w.running(2, onWorker1))
	if code := w.stop(); code != 0 {
		t.Fatalf("interrupted watch: exit %d, stderr %s", code, w.errOut.String())
	}
	r := e.run("node", "ps", "--watch", "-o", "json", "worker-1")
	if r.code == 0 || !strings.Contains(r.stderr, "--watch") {
		t.Fatalf("--watch -o json: exit %d, stderr %s", r.code, r.stderr)
	}
	if r := e.run("node", "ps", "--watch", "no-such-node"); r.code == 0 || !strings.Contains(r.stderr, "no-such-node") {
		t.Fatalf("--watch of an unknown node: exit %d, stderr %s", r.code, r.stderr)
	}
}
