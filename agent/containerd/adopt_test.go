package containerd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/shoal-sched/shoal/agent"
)

func TestAdoptAfterRestart(t *testing.T) {
	e := newEnv(t)
	ticker := e.task(t, "sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.05; done")
	e.run(t, ticker)
	created := e.task(t, "true")
	if err := e.rt.Create(t.Context(), created); err != nil {
		t.Fatal(err)
	}
	exited := e.task(t, "sh", "-c", "exit 4")
	e.run(t, exited)
	e.wait(t, exited.ID)
	eventually(t, 10*time.Second, "ticks", func() bool { return len(e.logsOf(t, ticker.ID)) >= 3 })

	// The agent restarts: a new Runtime on the same containerd namespace
	// and state dir.
	if err := e.rt.Close(); err != nil {
		t.Fatal(err)
	}
	e.rt = e.newRuntime(t)
	list, err := e.rt.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]agent.Container{}
	for _, c := range list {
		byID[c.TaskID] = c
	}
	want := map[string]agent.Container{
		ticker.ID:  {TaskID: ticker.ID, ServiceID: "svc-1", Running: true},
		created.ID: {TaskID: created.ID, ServiceID: "svc-1"},
		exited.ID:  {TaskID: exited.ID, ServiceID: "svc-1", Exited: true, Exit: agent.ExitStatus{Code: 4}},
	}
	if len(byID) != len(want) {
		t.Fatalf("list = %+v, want %d containers", list, len(want))
	}
	for id, w := range want {
		got := byID[id]
		got.Exit.At = time.Time{}
		if got != w {
			t.Errorf("list[%s] = %+v, want %+v", id, got, w)
		}
	}
	if byID[exited.ID].Exit.At.IsZero() {
		t.Errorf("exited container has no exit time")
	}

	// The adopted container's output reaches its log again, with nothing
	// lost while no one was reading.
	before := len(e.logsOf(t, ticker.ID))
	eventually(t, 10*time.Second, "ticks after adoption", func() bool { return len(e.logsOf(t, ticker.ID)) >= before+5 })
	for i, l := range e.logsOf(t, ticker.ID) {
		if l != "stdout: tick "+strconv.Itoa(i+1) {
			t.Fatalf("log line %d = %q, want tick %d", i, l, i+1)
		}
	}

	// sh as PID 1 has no TERM handler: the kill comes after the grace.
	if err := e.rt.Stop(t.Context(), ticker.ID, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if st := e.wait(t, ticker.ID); st.Code != 137 {
		t.Fatalf("adopted container exit = %+v, want 137", st)
	}
	for _, id := range []string{ticker.ID, created.ID, exited.ID} {
		e.checkRemove(t, id)
	}
	if list, err := e.rt.List(t.Context()); err != nil || len(list) != 0 {
		t.Fatalf("after remove, list = %+v, %v", list, err)
	}
}

// checkRemove removes a task's container twice and checks that its
// container, snapshot, logs and FIFOs are gone.
func (e *env) checkRemove(t *testing.T, id string) {
	t.Helper()
	ctx := e.rt.nsCtx(t.Context())
	for i := range 2 {
		if err := e.rt.Remove(ctx, id); err != nil {
			t.Fatalf("remove %s (#%d): %v", id, i+1, err)
		}
	}
	if _, err := e.rt.client.LoadContainer(ctx, id); !errdefs.IsNotFound(err) {
		t.Errorf("container %s still there: %v", id, err)
	}
	if _, err := e.rt.client.SnapshotService(e.rt.opts.Snapshotter).Stat(ctx, id); !errdefs.IsNotFound(err) {
		t.Errorf("snapshot %s still there: %v", id, err)
	}
	current, rotated := logPaths(e.rt.opts.LogDir, id)
	shim := ShimSocket(e.rt.opts.Address, e.rt.opts.Namespace, id)
	for _, p := range []string{current, rotated, e.rt.fifoDir(id), shim} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if err := e.rt.Logs(ctx, id, agent.LogOptions{Tail: -1}, &lines{}); !errors.Is(err, agent.ErrNotFound) {
		t.Errorf("logs of removed %s: %v, want ErrNotFound", id, err)
	}
}

func TestRemoveRunning(t *testing.T) {
	e := newEnv(t)
	task := e.task(t, "sleep", "60")
	e.run(t, task)
	pidsBefore := e.cgroupProcs(t, task.ID)
	if len(pidsBefore) == 0 {
		t.Fatal("no process in the container's cgroup")
	}
	e.checkRemove(t, task.ID)
	for _, pid := range pidsBefore {
		if _, err := os.Stat(fmt.Sprintf("/proc/%s", pid)); err == nil {
			t.Errorf("process %s of the removed container still runs", pid)
		}
	}
}

// cgroupProcs lists the PIDs in the container's memory cgroup.
func (e *env) cgroupProcs(t *testing.T, id string) []string {
	t.Helper()
	file := "memory/cgroup.procs"
	if unifiedCgroups() {
		file = "cgroup.procs"
	}
	return strings.Fields(readCgroupFile(t, e.cgroupPath(t, id), file))
}

// TestRemoveDeletesDeadShimSocket: a shim killed with its host (SIGKILL)
// leaves its socket in /run/containerd/s; removing the container deletes it.
func TestRemoveDeletesDeadShimSocket(t *testing.T) {
	e := newEnv(t)
	task := e.task(t, "sleep", "60")
	e.run(t, task)
	bundle := filepath.Join(e.daemon.Dir, "state", "io.containerd.runtime.v2.task", e.rt.opts.Namespace, task.ID)
	shim := ShimSocket(e.rt.opts.Address, e.rt.opts.Namespace, task.ID)
	// containerd records where its shim listens: ShimSocket must agree.
	if b, err := os.ReadFile(filepath.Join(bundle, "address")); err != nil || strings.TrimSpace(string(b)) != "unix://"+shim {
		t.Fatalf("shim address %q (%v), ShimSocket says %q", b, err, shim)
	}
	t.Cleanup(func() { _ = os.Remove(shim) })
	// The shim is the parent of the container's first process.
	initPID, err := os.ReadFile(filepath.Join(bundle, "init.pid"))
	if err != nil {
		t.Fatalf("init pid: %v", err)
	}
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(initPID)) + "/stat")
	if err != nil {
		t.Fatalf("container process: %v", err)
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	shimPID, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatalf("shim pid from %q: %v", stat, err)
	}
	if err := syscall.Kill(shimPID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill shim %d: %v", shimPID, err)
	}
	if _, err := os.Stat(shim); err != nil {
		t.Fatalf("the killed shim's socket is not there (%v): the test no longer shows the leak", err)
	}
	e.checkRemove(t, task.ID)
}
