package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/containerd/containerdtest"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/poll"
)

// env is one test's private containerd, registry and Runtime.
type env struct {
	daemon   *containerdtest.Daemon
	registry *containerdtest.Registry
	opts     Options
	rt       *Runtime
}

// newEnv starts a containerd and a registry for t and a Runtime on them,
// in a namespace of its own, with the busybox image pulled.
func newEnv(t testing.TB) *env {
	t.Helper()
	d := containerdtest.StartDaemon(t)
	reg := containerdtest.StartRegistry(t)
	e := &env{daemon: d, registry: reg}
	e.opts = Options{
		Address:            d.Address,
		Namespace:          "t-" + randomID(t)[:8],
		NodeID:             "node-1",
		StateDir:           t.TempDir(),
		InsecureRegistries: []string{reg.Host},
		StopGrace:          2 * time.Second,
		Logger:             testLogger(t),
	}
	e.rt = e.newRuntime(t)
	if err := e.rt.Pull(t.Context(), reg.Image); err != nil {
		t.Fatalf("pull %s: %v", reg.Image, err)
	}
	return e
}

func (e *env) newRuntime(t testing.TB) *Runtime {
	t.Helper()
	rt, err := New(t.Context(), e.opts)
	if err != nil {
		t.Fatalf("new runtime: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("close runtime: %v", err)
		}
	})
	return rt
}

// task returns a task running the busybox image with the given command.
func (e *env) task(t testing.TB, cmd ...string) *api.Task {
	return &api.Task{
		ID:        "task-" + randomID(t),
		ServiceID: "svc-1",
		Slot:      1,
		Spec:      &api.ServiceSpec{Name: "web", Image: e.registry.Image, Command: cmd},
	}
}

// run creates and starts the task and returns once it is running.
func (e *env) run(t testing.TB, task *api.Task) {
	t.Helper()
	if err := e.rt.Create(t.Context(), task); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := e.rt.Start(t.Context(), task.ID); err != nil {
		t.Fatalf("start: %v", err)
	}
}

// wait waits for the task to exit, bounded.
func (e *env) wait(t testing.TB, id string) agent.ExitStatus {
	t.Helper()
	ctx, cancel := contextTimeout(t, 60*time.Second)
	defer cancel()
	st, err := e.rt.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait %s: %v", id, err)
	}
	return st
}

func randomID(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// lines collects log lines.
type lines struct {
	mu  sync.Mutex
	got []string // "stream: text"
}

func (l *lines) WriteLine(stream string, at time.Time, line []byte) error {
	if at.IsZero() {
		return errors.New("line without a time")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, stream+": "+string(line))
	return nil
}

func (l *lines) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

// logsOf returns all the task's log lines.
func (e *env) logsOf(t testing.TB, id string) []string {
	t.Helper()
	var l lines
	if err := e.rt.Logs(t.Context(), id, agent.LogOptions{Tail: -1}, &l); err != nil {
		t.Fatalf("logs %s: %v", id, err)
	}
	return l.snapshot()
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, d, func() error {
		if cond() {
			return nil
		}
		return fmt.Errorf("waiting for %s", what)
	})
}

func contextTimeout(t testing.TB, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}
