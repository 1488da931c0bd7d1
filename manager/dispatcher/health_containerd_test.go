package dispatcher_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/shoal-sched/shoal/agent/containerd/containerdtest"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/registry"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/raftstore"
)

// healthEnv is one manager (dispatcher and orchestrator on a local
// applier) and one agent on a private containerd, with a loopback registry.
type healthEnv struct {
	t      *testing.T
	s      *single
	c      *ctrdAgent
	daemon *containerdtest.Daemon
	reg    *containerdtest.Registry
}

func newHealthEnv(t *testing.T) *healthEnv {
	if err := containerdtest.Requirements(); err != nil {
		t.Fatal(err)
	}
	e := &healthEnv{t: t, daemon: containerdtest.StartDaemon(t), reg: containerdtest.StartRegistry(t)}
	e.s = newSingle(t, 10*time.Second)
	e.s.startOrchestrator()
	e.c = &ctrdAgent{t: t, dir: t.TempDir(), daemon: e.daemon, reg: e.reg, join: []string{e.s.addr}}
	e.c.start()
	t.Cleanup(e.c.stop)
	return e
}

// service creates a replicated service of the busybox image running cmd,
// replaced at once when it fails.
func (e *healthEnv) service(id string, edit func(*api.ServiceSpec), cmd ...string) {
	e.t.Helper()
	spec := api.ServiceSpec{
		Name: id, Image: e.reg.Image, Mode: api.ModeReplicated, Replicas: 1, Command: cmd,
		StopGracePeriod: api.Duration(time.Second),
		RestartPolicy:   api.RestartPolicy{Condition: api.RestartAny, Delay: api.Duration(100 * time.Millisecond)},
	}
	if edit != nil {
		edit(&spec)
	}
	now := time.Now()
	if _, err := e.s.apply.Apply(e.t.Context(), raftstore.CreateService{Service: &api.Service{
		ID: id, Spec: spec, SpecVersion: 1, CreatedAt: now, UpdatedAt: now,
	}}); err != nil {
		e.t.Fatal(err)
	}
}

// waitTask waits until some task of the service satisfies ok.
func (e *healthEnv) waitTask(svc, what string, ok func(*api.Task) bool) *api.Task {
	e.t.Helper()
	var found *api.Task
	managertest.WaitFor(e.t, 60*time.Second, func() error {
		var seen []string
		for _, tk := range e.s.state.Read().TasksByService(svc) {
			if ok(tk) {
				found = tk
				return nil
			}
			seen = append(seen, fmt.Sprintf("%s attempt %d: %s (%s) %q %q", tk.ID, tk.Attempt, tk.Status.State, tk.Status.Health, tk.Status.Message, tk.Status.PendingReason))
		}
		return fmt.Errorf("no task of %s %s; tasks: %s", svc, what, strings.Join(seen, "; "))
	})
	return found
}

func fastCheck(test ...string) *api.Healthcheck {
	return &api.Healthcheck{Test: test, Interval: api.Duration(100 * time.Millisecond), Timeout: api.Duration(5 * time.Second), Retries: 2}
}

// TestContainerdHealthChecks runs health commands in real containers: a
// check that passes makes the task running (healthy), one that starts
// failing gets the task failed and replaced, and the image's own
// HEALTHCHECK is honoured when the spec has none.
func TestContainerdHealthChecks(t *testing.T) {
	e := newHealthEnv(t)
	e.service("ok", func(s *api.ServiceSpec) { s.Healthcheck = fastCheck("CMD-SHELL", "test -e /tmp/ready && echo ready") },
		"sh", "-c", "touch /tmp/ready; exec sleep 3600")
	e.service("flaky", func(s *api.ServiceSpec) { s.Healthcheck = fastCheck("CMD", "test", "-e", "/tmp/ok") },
		"sh", "-c", "touch /tmp/ok; sleep 2; rm /tmp/ok; exec sleep 3600")
	e.service("img", func(s *api.ServiceSpec) { s.Image = e.reg.HealthImage }, "sleep", "3600")
	e.service("slow", func(s *api.ServiceSpec) {
		s.Healthcheck = fastCheck("CMD", "test", "-e", "/tmp/ok")
		s.Healthcheck.StartPeriod = api.Duration(30 * time.Second) // its failures before /tmp/ok do not count
	},
		"sh", "-c", "sleep 5; touch /tmp/ok; exec sleep 3600")
	e.service("after", func(s *api.ServiceSpec) {
		s.DependsOn = []api.Dependency{{Service: "slow", Condition: api.DependHealthy}}
	}, "sleep", "3600")

	t.Run("service_healthy waits for the health check", func(t *testing.T) {
		e.waitTask("after", "held back by its dependency's health", func(tk *api.Task) bool {
			return tk.Status.State == api.TaskPending && strings.Contains(tk.Status.PendingReason, `waiting for service "slow" (service_healthy): 0 of 1 replicas healthy`)
		})
		after := e.waitTask("after", "running", func(tk *api.Task) bool { return tk.Status.State == api.TaskRunning })
		slow := e.waitTask("slow", "healthy", func(tk *api.Task) bool { return tk.Status.Health == api.HealthHealthy })
		log := slow.Status.HealthLog
		if len(log) == 0 || !after.Status.Timestamp.After(log[len(log)-1].Start) {
			t.Fatalf("the dependent ran at %s, before its dependency's first passing probe (%+v)", after.Status.Timestamp, log)
		}
	})
	t.Run("passing check is healthy", func(t *testing.T) {
		tk := e.waitTask("ok", "running (healthy)", func(tk *api.Task) bool {
			return tk.Status.State == api.TaskRunning && tk.Status.Health == api.HealthHealthy
		})
		log := tk.Status.HealthLog
		if len(log) == 0 || log[len(log)-1].ExitCode != 0 || strings.TrimSpace(log[len(log)-1].Output) != "ready" {
			t.Fatalf("probe log %+v, want the passing probe's output", log)
		}
		if !api.TaskUp(tk, e.s.state.Read().ServiceSpec("ok", tk.SpecVersion)) {
			t.Fatal("a healthy running task is not up")
		}
	})
	t.Run("failing check replaces the task", func(t *testing.T) {
		first := e.waitTask("flaky", "failed unhealthy", func(tk *api.Task) bool {
			return tk.Attempt == 0 && tk.Status.State == api.TaskFailed && tk.Status.Health == api.HealthUnhealthy
		})
		if !strings.Contains(first.Status.Err, "unhealthy") || !strings.Contains(first.Status.Message, "exited 1") {
			t.Fatalf("failed task status %+v, want the unhealthy check named", first.Status)
		}
		e.waitTask("flaky", "replacing the unhealthy one", func(tk *api.Task) bool {
			return tk.Slot == first.Slot && tk.Attempt > 0 && tk.Status.State == api.TaskRunning
		})
	})
	t.Run("image HEALTHCHECK honoured", func(t *testing.T) {
		tk := e.waitTask("img", "running (healthy) by the image's check", func(tk *api.Task) bool {
			return tk.Status.State == api.TaskRunning && tk.Status.Health == api.HealthHealthy
		})
		log := tk.Status.HealthLog
		if len(log) == 0 || !strings.Contains(log[len(log)-1].Output, "image check ok") {
			t.Fatalf("probe log %+v, want the image's check output", log)
		}
	})
}

// TestContainerdDigestPinned: a service pinned to the digest its tag named
// when it was created keeps running those bytes on every task after the
// tag moved in the registry, new tasks included.
func TestContainerdDigestPinned(t *testing.T) {
	e := newHealthEnv(t)
	regs, err := registry.New(registry.Options{Insecure: []string{e.reg.Host}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := regs.Digest(t.Context(), e.reg.Image)
	if err != nil {
		t.Fatal(err)
	}
	e.service("pinned", func(s *api.ServiceSpec) { s.ImageDigest = first }, "sleep", "3600")
	e.waitTask("pinned", "running", func(tk *api.Task) bool { return tk.Status.State == api.TaskRunning })
	moved := e.reg.Push(t, "shoal/busybox:latest", "moved")
	if moved == first {
		t.Fatal("the pushed variant has the first digest")
	}
	svc := e.s.state.Read().Service("pinned")
	spec := *svc.Spec.Clone()
	spec.Replicas = 3
	if _, err := e.s.apply.Apply(t.Context(), raftstore.UpdateService{ID: svc.ID, Spec: spec, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	managertest.WaitFor(t, 60*time.Second, func() error {
		_, err := slotsRunning(e.s.state.Read(), "pinned", 3)
		return err
	})
	cl, err := client.New(e.daemon.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := namespaces.WithNamespace(t.Context(), "shoal-agent-test")
	ctrs, err := cl.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := e.reg.Host + "/shoal/busybox@" + first
	running := 0
	for _, c := range ctrs {
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Image != want {
			t.Errorf("container %s runs %s, want %s", c.ID(), info.Image, want)
		}
		running++
	}
	if running != 3 {
		t.Fatalf("%d containers, want 3", running)
	}
}
