package containerd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/api"
)

func TestRunProcess(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name     string
		spec     func(s *api.ServiceSpec)
		wantCode int32
		wantLogs []string
	}{
		{
			name:     "exit code and both streams",
			spec:     func(s *api.ServiceSpec) { s.Command = []string{"sh", "-c", "echo hello; echo oops >&2; exit 3"} },
			wantCode: 3,
			wantLogs: []string{"stdout: hello", "stderr: oops"},
		},
		{
			name:     "success",
			spec:     func(s *api.ServiceSpec) { s.Command = []string{"true"} },
			wantCode: 0,
		},
		{
			name: "env from image and spec, spec wins",
			spec: func(s *api.ServiceSpec) {
				s.Command = []string{"sh", "-c", `echo "$GREETING $WHO"; echo "$PATH"`}
				s.Env = []string{"GREETING=hi", "WHO=shoal", "PATH=/bin"}
			},
			wantLogs: []string{"stdout: hi shoal", "stdout: /bin"},
		},
		{
			name: "args replace the image cmd",
			spec: func(s *api.ServiceSpec) {
				// The image has no entrypoint and cmd ["sh"]: args are the
				// whole command line.
				s.Args = []string{"echo", "from", "args"}
			},
			wantLogs: []string{"stdout: from args"},
		},
		{
			name: "command and args",
			spec: func(s *api.ServiceSpec) {
				s.Command = []string{"echo", "cmd"}
				s.Args = []string{"and", "args"}
			},
			wantLogs: []string{"stdout: cmd and args"},
		},
		{
			name: "working dir and user",
			spec: func(s *api.ServiceSpec) {
				s.Command = []string{"sh", "-c", "pwd; id -u"}
				s.Dir = "/tmp"
				s.User = "65534"
			},
			wantLogs: []string{"stdout: /tmp", "stdout: 65534"},
		},
		{
			name: "user by name from the image's passwd",
			spec: func(s *api.ServiceSpec) {
				s.Command = []string{"id", "-u"}
				s.User = "nobody"
			},
			wantLogs: []string{"stdout: 65534"},
		},
		{
			name: "host network",
			spec: func(s *api.ServiceSpec) {
				s.Command = []string{"sh", "-c", "cat /proc/net/dev | wc -l"}
			},
			wantLogs: []string{"stdout: " + hostNetDevLines(t)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			task := e.task(t)
			tc.spec(task.Spec)
			e.run(t, task)
			st := e.wait(t, task.ID)
			if st.Code != tc.wantCode || st.OOMKilled || st.At.IsZero() {
				t.Fatalf("exit = %+v, want code %d, not OOM-killed, with a time", st, tc.wantCode)
			}
			// Each stream keeps its order; how the two interleave depends on
			// which pipe is read first.
			got := e.logsOf(t, task.ID)
			for _, stream := range []string{"stdout", "stderr"} {
				if g, w := ofStream(got, stream), ofStream(tc.wantLogs, stream); !slices.Equal(g, w) {
					t.Fatalf("%s = %q, want %q", stream, g, w)
				}
			}
			if err := e.rt.Remove(t.Context(), task.ID); err != nil {
				t.Fatalf("remove: %v", err)
			}
		})
	}
}

// ofStream returns the lines ("stream: text") of one stream.
func ofStream(lines []string, stream string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, stream+": ") {
			out = append(out, l)
		}
	}
	return out
}

// hostNetDevLines is what `wc -l` of /proc/net/dev says on the host: a
// container on the host network sees the same interfaces.
func hostNetDevLines(t *testing.T) string {
	b, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(strings.Count(string(b), "\n"))
}

func TestStartCommandNotFound(t *testing.T) {
	e := newEnv(t)
	task := e.task(t, "no-such-command")
	if err := e.rt.Create(t.Context(), task); err != nil {
		t.Fatalf("create: %v", err)
	}
	err := e.rt.Start(t.Context(), task.ID)
	if err == nil || !strings.Contains(err.Error(), "no-such-command") {
		t.Fatalf("start error = %v, want one naming the command", err)
	}
	list, err := e.rt.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Running || list[0].Exited {
		t.Fatalf("list = %+v, want the created container, neither running nor exited", list)
	}
	if _, err := e.rt.Wait(t.Context(), task.ID); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("wait error = %v, want ErrNotStarted", err)
	}
}

func TestMounts(t *testing.T) {
	e := newEnv(t)
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "in"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	roDir := t.TempDir()
	task := e.task(t, "sh", "-c", `cat /data/in; echo
echo written > /data/out
cat /ro/nothing 2>/dev/null; touch /ro/x 2>/dev/null && echo ro-writable || echo ro-refused
echo kept > /vol/file`)
	task.Spec.Mounts = []api.Mount{
		{Type: "bind", Source: hostDir, Target: "/data"},
		{Type: "bind", Source: roDir, Target: "/ro", ReadOnly: true},
		{Type: "volume", Source: "cache", Target: "/vol"},
	}
	e.run(t, task)
	if st := e.wait(t, task.ID); st.Code != 0 {
		t.Fatalf("exit = %+v, logs %q", st, e.logsOf(t, task.ID))
	}
	want := []string{"stdout: from host", "stdout: ro-refused"}
	if got := e.logsOf(t, task.ID); !slices.Equal(got, want) {
		t.Fatalf("logs = %q, want %q", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(hostDir, "out")); err != nil || string(b) != "written\n" {
		t.Fatalf("bind mount write: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(e.opts.StateDir, "volumes", "cache", "file")); err != nil || string(b) != "kept\n" {
		t.Fatalf("volume on the host: %q, %v", b, err)
	}

	// A second task sees what the first left in the volume, even after
	// the first was removed.
	if err := e.rt.Remove(t.Context(), task.ID); err != nil {
		t.Fatal(err)
	}
	reader := e.task(t, "cat", "/vol/file")
	reader.Spec.Mounts = []api.Mount{{Type: "volume", Source: "cache", Target: "/vol", ReadOnly: true}}
	e.run(t, reader)
	if st := e.wait(t, reader.ID); st.Code != 0 {
		t.Fatalf("reader exit = %+v", st)
	}
	if got := e.logsOf(t, reader.ID); !slices.Equal(got, []string{"stdout: kept"}) {
		t.Fatalf("reader logs = %q", got)
	}
}

func TestLimitsInCgroup(t *testing.T) {
	e := newEnv(t)
	task := e.task(t, "sleep", "60")
	task.Spec.Resources = api.ResourceRequirements{
		Limits:       api.Resources{NanoCPUs: 500_000_000, MemoryBytes: 64 << 20},
		Reservations: api.Resources{NanoCPUs: 250_000_000, MemoryBytes: 32 << 20},
	}
	e.run(t, task)
	cg := e.cgroupPath(t, task.ID)
	want := map[string]string{
		"cpu/cpu.cfs_quota_us":               "50000",
		"cpu/cpu.cfs_period_us":              "100000",
		"cpu/cpu.shares":                     "256",
		"memory/memory.limit_in_bytes":       fmt.Sprint(64 << 20),
		"memory/memory.memsw.limit_in_bytes": fmt.Sprint(64 << 20),
	}
	if unifiedCgroups() {
		want = map[string]string{
			"cpu.max":    "50000 100000",
			"cpu.weight": "10", // shares 256 → weight 1 + (256-2)*9999/262142
			"memory.max": fmt.Sprint(64 << 20),
		}
	}
	for file, v := range want {
		t.Run(file, func(t *testing.T) {
			got := readCgroupFile(t, cg, file)
			if got != v {
				t.Fatalf("%s = %q, want %q", file, got, v)
			}
		})
	}
	if err := e.rt.Stop(t.Context(), task.ID, time.Second); err != nil {
		t.Fatal(err)
	}
}

// cgroupPath returns the container's cgroups path as its spec says.
func (e *env) cgroupPath(t *testing.T, id string) string {
	t.Helper()
	ctr, err := e.rt.load(e.rt.nsCtx(t.Context()), id)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ctr.Spec(e.rt.nsCtx(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	return spec.Linux.CgroupsPath
}

func readCgroupFile(t *testing.T, cgroupsPath, file string) string {
	t.Helper()
	p := filepath.Join(cgroupRoot, cgroupsPath, file)
	if !unifiedCgroups() {
		// v1: <root>/<controller>/<path>/<file>
		ctrl, name, _ := strings.Cut(file, "/")
		p = filepath.Join(cgroupRoot, ctrl, cgroupsPath, name)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read cgroup file: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func TestOOMKilled(t *testing.T) {
	e := newEnv(t)
	// The string doubles until the 8 MiB limit is hit.
	task := e.task(t, "sh", "-c", "x=0123456789abcdef; while true; do x=$x$x; done")
	task.Spec.Resources.Limits.MemoryBytes = 8 << 20
	e.run(t, task)
	st := e.wait(t, task.ID)
	if !st.OOMKilled || st.Code != 137 {
		t.Fatalf("exit = %+v, want OOM-killed with code 137", st)
	}
	list, err := e.rt.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || !list[0].Exited || !list[0].Exit.OOMKilled {
		t.Fatalf("list = %+v, want the exited, OOM-killed container", list)
	}
}

func TestStop(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name     string
		script   string
		grace    time.Duration
		wantCode int32
	}{
		// PID 1 of a container ignores signals it has no handler for, so
		// a plain sleep loop is also only stopped by SIGKILL.
		{"exits on TERM", "trap 'echo term; exit 7' TERM; echo ready; while true; do sleep 0.05; done", 10 * time.Second, 7},
		{"ignores TERM, killed after grace", "trap '' TERM; echo ready; while true; do sleep 0.05; done", time.Second, 137},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			task := e.task(t, "sh", "-c", tc.script)
			e.run(t, task)
			// The trap is set once the script says so.
			eventually(t, 10*time.Second, "ready", func() bool { return slices.Contains(e.logsOf(t, task.ID), "stdout: ready") })
			start := time.Now()
			if err := e.rt.Stop(t.Context(), task.ID, tc.grace); err != nil {
				t.Fatalf("stop: %v", err)
			}
			stopped := time.Since(start)
			st := e.wait(t, task.ID)
			if st.Code != tc.wantCode {
				t.Fatalf("exit = %+v, want code %d", st, tc.wantCode)
			}
			if tc.wantCode == 137 && stopped < tc.grace {
				t.Fatalf("killed after %s, before the %s grace", stopped, tc.grace)
			}
			// Stopping a stopped container is fine.
			if err := e.rt.Stop(t.Context(), task.ID, tc.grace); err != nil {
				t.Fatalf("second stop: %v", err)
			}
		})
	}
}

func TestPullMissingImage(t *testing.T) {
	e := newEnv(t)
	missing := e.registry.Host + "/shoal/nothing:1.0"
	err := e.rt.Pull(t.Context(), missing)
	if !errors.Is(err, ErrImageNotFound) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("pull error = %v, want ErrImageNotFound naming %s", err, missing)
	}
	// Without the insecure listing the registry is spoken to over HTTPS,
	// which the plain HTTP registry does not answer.
	opts := e.opts
	opts.InsecureRegistries = nil
	opts.Namespace += "-tls"
	rt := (&env{opts: opts}).newRuntime(t)
	err = rt.Pull(t.Context(), e.registry.Image)
	if err == nil || !strings.Contains(err.Error(), e.registry.Image) {
		t.Fatalf("pull over https error = %v, want one naming %s", err, e.registry.Image)
	}
	task := e.task(t, "true")
	task.Spec.Image = missing
	if err := e.rt.Create(t.Context(), task); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("create error = %v, want one naming %s", err, missing)
	}
}

func TestCreateRejects(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		edit func(*api.Task)
		want string
	}{
		{"bad task id", func(t *api.Task) { t.ID = "a/b" }, `task id "a/b"`},
		{"no image", func(t *api.Task) { t.Spec.Image = "" }, "spec.image is empty"},
		{"env without =", func(t *api.Task) { t.Spec.Env = []string{"FOO"} }, `spec.env entry "FOO"`},
		{"relative dir", func(t *api.Task) { t.Spec.Dir = "tmp" }, `spec.dir "tmp"`},
		{"mount type", func(t *api.Task) { t.Spec.Mounts = []api.Mount{{Type: "npipe", Target: "/x"}} }, `spec.mounts[0]: type "npipe": want bind, volume or tmpfs`},
		{"relative target", func(t *api.Task) { t.Spec.Mounts = []api.Mount{{Type: "volume", Source: "v", Target: "x"}} }, `target "x"`},
		{"missing bind source", func(t *api.Task) {
			t.Spec.Mounts = []api.Mount{{Type: "bind", Source: "/no/such/dir", Target: "/x"}}
		}, `bind source "/no/such/dir"`},
		{"bad volume name", func(t *api.Task) { t.Spec.Mounts = []api.Mount{{Type: "volume", Source: "../etc", Target: "/x"}} }, `volume name "../etc"`},
		{"tiny memory", func(t *api.Task) { t.Spec.Resources.Limits.MemoryBytes = 1024 }, "resources.limits.memory_bytes 1024"},
		{"tiny cpu", func(t *api.Task) { t.Spec.Resources.Limits.NanoCPUs = 1000 }, "resources.limits.nano_cpus 1000"},
		{"negative reservation", func(t *api.Task) { t.Spec.Resources.Reservations.NanoCPUs = -1 }, "resources.reservations.nano_cpus -1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			task := e.task(t, "true")
			tc.edit(task)
			err := e.rt.Create(t.Context(), task)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("create error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	list, err := e.rt.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Fatalf("rejected creates left containers: %+v", list)
	}
	if err := e.rt.Create(t.Context(), nil); err == nil {
		t.Fatal("create(nil) succeeded")
	}
}

func TestCreateTwice(t *testing.T) {
	e := newEnv(t)
	task := e.task(t, "sh", "-c", "echo alive; sleep 60")
	e.run(t, task)
	err := e.rt.Create(t.Context(), task)
	if !errdefs.IsAlreadyExists(err) || !strings.Contains(err.Error(), task.ID) {
		t.Fatalf("second create: %v, want already exists naming %s", err, task.ID)
	}
	// The first container and its root filesystem are untouched.
	ctx := e.rt.nsCtx(t.Context())
	if _, err := e.rt.client.SnapshotService(e.rt.opts.Snapshotter).Stat(ctx, task.ID); err != nil {
		t.Fatalf("snapshot of the first container: %v", err)
	}
	eventually(t, 10*time.Second, "output", func() bool { return slices.Equal(e.logsOf(t, task.ID), []string{"stdout: alive"}) })
	list, err := e.rt.List(t.Context())
	if err != nil || len(list) != 1 || !list[0].Running {
		t.Fatalf("list = %+v, %v; want the first container running", list, err)
	}
}

func TestUnknownTask(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	if err := e.rt.Start(ctx, "nope"); !errors.Is(err, agent.ErrNotFound) {
		t.Errorf("start: %v, want ErrNotFound", err)
	}
	if _, err := e.rt.Wait(ctx, "nope"); !errors.Is(err, agent.ErrNotFound) {
		t.Errorf("wait: %v, want ErrNotFound", err)
	}
	if err := e.rt.Stop(ctx, "nope", time.Second); !errors.Is(err, agent.ErrNotFound) {
		t.Errorf("stop: %v, want ErrNotFound", err)
	}
	if err := e.rt.Logs(ctx, "nope", agent.LogOptions{Tail: -1}, &lines{}); !errors.Is(err, agent.ErrNotFound) {
		t.Errorf("logs: %v, want ErrNotFound", err)
	}
	if err := e.rt.Remove(ctx, "nope"); err != nil {
		t.Errorf("remove: %v, want nil", err)
	}
}
