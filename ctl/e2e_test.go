package ctl

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// e2e is a real cluster in the test process: a manager (Raft over TCP,
// gRPC on loopback) and agents whose runtime is the fake at the Runtime
// seam. shoalctl runs in process against it with the real clock.
type e2e struct {
	t        testing.TB
	cluster  *managertest.Cluster
	host     string
	certDir  string // the operator certificate shoalctl dials with
	runtimes []*fake.Runtime
	// certStatus is the agents' certificate status interval (zero: the
	// default).
	certStatus time.Duration
}

func startE2E(t testing.TB, agents int) *e2e {
	t.Helper()
	c := managertest.StartCluster(t, 1, managertest.Options{})
	e := &e2e{t: t, cluster: c, host: c.Addr(0), certDir: t.TempDir()}
	if err := c.Credentials(pki.RoleOperator).SaveTo(e.certDir); err != nil {
		t.Fatal(err)
	}
	for i := range agents {
		e.startAgent(fmt.Sprintf("worker-%d", i+1))
	}
	c.WaitFor(30*time.Second, func() error {
		resp, err := c.Client(0).ListNodes(t.Context(), &shoalpb.ListNodesRequest{})
		if err != nil {
			return err
		}
		ready := 0
		for _, n := range resp.GetNodes() {
			if n.GetNode().GetStatus() == string(api.NodeReady) {
				ready++
			}
		}
		if ready < agents {
			return fmt.Errorf("%d of %d agents ready", ready, agents)
		}
		return nil
	})
	return e
}

// startAgent runs one agent with a fake runtime until the test ends.
func (e *e2e) startAgent(name string) {
	t := e.t
	rt := fake.New()
	e.runtimes = append(e.runtimes, rt)
	dir := t.TempDir()
	creds := e.cluster.AgentCredentials(dir)
	a, err := agent.New(agent.Config{
		DataDir: dir, Join: []string{e.host}, AdvertiseAddr: "127.0.0.1:0", Hostname: name,
		Credentials: creds, Plaintext: creds == nil,
		Runtime: rt, DataPlane: &fakeDataPlane{}, Resources: api.Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30},
		HeartbeatInterval: 200 * time.Millisecond, StatusDelay: 10 * time.Millisecond,
		CertStatusInterval: e.certStatus,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("agent %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent %s: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("agent %s did not stop within 30s", name)
		}
	})
}

// run runs shoalctl against the cluster with the real clock.
func (e *e2e) run(args ...string) result {
	e.t.Helper()
	var out, errOut syncBuffer
	app := &App{
		Out: &out, Err: &errOut, Now: time.Now,
		Getenv: func(k string) string {
			switch k {
			case HostEnv:
				return e.host
			case CertPathEnv:
				return e.certDir
			}
			return ""
		},
	}
	code := Execute(e.t.Context(), app, args)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

func (e *e2e) mustRun(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("shoalctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// services reads the stack's services by name.
func (e *e2e) services() map[string]*shoalpb.Service {
	resp, err := e.cluster.Client(0).ListServices(e.t.Context(), &shoalpb.ListServicesRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]*shoalpb.Service{}
	for _, s := range resp.GetServices() {
		out[s.GetService().GetSpec().GetName()] = s.GetService()
	}
	return out
}

// runningTasks maps each service to the IDs of its running tasks.
func (e *e2e) runningTasks() map[string][]string {
	resp, err := e.cluster.Client(0).ListTasks(e.t.Context(), &shoalpb.ListTasksRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, t := range resp.GetTasks() {
		if t.GetStatus().GetState() == "running" {
			out[t.GetServiceName()] = append(out[t.GetServiceName()], t.GetId())
		}
	}
	return out
}

// firstRunning is when the first task of each service was reported
// running, from the task events of the whole run.
func firstRunning(events []*shoalpb.Event) map[string]time.Time {
	out := map[string]time.Time{}
	for _, ev := range events {
		svc := ev.GetAttributes()["service"]
		if ev.GetType() != "task" || ev.GetAttributes()["state"] != "running" || ev.GetTime() == nil {
			continue
		}
		if at, seen := out[svc]; !seen || ev.GetTime().AsTime().Before(at) {
			out[svc] = ev.GetTime().AsTime()
		}
	}
	return out
}

// recordEvents streams every event of the cluster into a list until the
// test ends; the stream is subscribed when it returns.
func (e *e2e) recordEvents() func() []*shoalpb.Event {
	t := e.t
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := e.cluster.Client(0).Events(ctx, &shoalpb.EventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []*shoalpb.Event
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() []*shoalpb.Event {
		mu.Lock()
		defer mu.Unlock()
		return append([]*shoalpb.Event(nil), events...)
	}
}

// TestE2EStackDeploy deploys the A→B→C fixture on a real manager with
// agents: the services start in depends_on order, a re-deploy that changes
// one service touches that one only, and a dry run changes nothing.
func TestE2EStackDeploy(t *testing.T) {
	e := startE2E(t, 2)
	events := e.recordEvents()

	out := e.mustRun("stack", "deploy", "-c", abcFile, "--timeout", "60s", "abc")
	if out != "Creating network abc_default\nCreating service abc_a\nCreating service abc_b\nCreating service abc_c\n" {
		t.Errorf("deploy printed %q", out)
	}
	first := firstRunning(events())
	a, b, c := first["abc_a"], first["abc_b"], first["abc_c"]
	if a.IsZero() || b.IsZero() || c.IsZero() {
		t.Fatalf("first running times: %v; want one for each service", first)
	}
	if !a.Before(b) || !b.Before(c) {
		t.Errorf("first running: a %s, b %s, c %s; want a before b before c (depends_on)",
			a.Format(time.RFC3339Nano), b.Format(time.RFC3339Nano), c.Format(time.RFC3339Nano))
	}

	// Re-deploy with b's image changed: b alone is updated.
	before, tasksBefore := e.services(), e.runningTasks()
	changed := writeCompose(t, "services:\n  b:\n    image: busybox:1.37\n")
	out = e.mustRun("stack", "deploy", "-c", abcFile, "-c", changed, "--timeout", "60s", "abc")
	if out != "Service abc_a is up to date\nUpdating service abc_b (image)\nService abc_c is up to date\n" {
		t.Errorf("redeploy printed %q", out)
	}
	after, tasksAfter := e.services(), e.runningTasks()
	for _, name := range []string{"abc_a", "abc_c"} {
		if after[name].GetSpecVersion() != before[name].GetSpecVersion() {
			t.Errorf("%s went from spec version %d to %d; it did not change", name, before[name].GetSpecVersion(), after[name].GetSpecVersion())
		}
		if strings.Join(tasksAfter[name], ",") != strings.Join(tasksBefore[name], ",") {
			t.Errorf("%s tasks changed from %v to %v", name, tasksBefore[name], tasksAfter[name])
		}
	}
	if after["abc_b"].GetSpecVersion() != before["abc_b"].GetSpecVersion()+1 || after["abc_b"].GetSpec().GetImage() != "busybox:1.37" {
		t.Errorf("abc_b: version %d image %q, want version %d and busybox:1.37",
			after["abc_b"].GetSpecVersion(), after["abc_b"].GetSpec().GetImage(), before["abc_b"].GetSpecVersion()+1)
	}

	checkDryRunChangesNothing(e, events, after)
}

// checkDryRunChangesNothing runs a dry run that would create, update and
// remove: no service event may come before a marker written after it, and
// the services stay as they were (after).
func checkDryRunChangesNothing(e *e2e, events func() []*shoalpb.Event, after map[string]*shoalpb.Service) {
	t := e.t
	seen := len(events())
	dry := writeCompose(t, "services:\n  a:\n    image: busybox:1.35\n  d:\n    image: busybox:1.36\n")
	plan := e.mustRun("stack", "deploy", "--dry-run", "--prune", "-c", dry, "abc")
	for _, want := range []string{`Service "abc_a": update`, `Service "abc_d": create`, `Service "abc_b": remove`, "worker-"} {
		if !strings.Contains(plan, want) {
			t.Errorf("dry-run plan lacks %q:\n%s", want, plan)
		}
	}
	e.mustRun("service", "create", "-d", "--name", "marker", "busybox")
	var tail []*shoalpb.Event
	e.cluster.WaitFor(10*time.Second, func() error {
		tail = events()[seen:]
		for _, ev := range tail {
			if ev.GetType() == "service" && ev.GetName() == "marker" {
				return nil
			}
		}
		return fmt.Errorf("no create event of the marker among %d events", len(tail))
	})
	for _, ev := range tail {
		if ev.GetType() == "service" && strings.HasPrefix(ev.GetName(), "abc_") {
			t.Errorf("the dry run changed a service: %s %s", ev.GetAction(), ev.GetName())
		}
		if ev.GetType() == "service" && ev.GetName() == "marker" {
			break
		}
	}
	if got := e.services(); got["abc_a"].GetSpecVersion() != after["abc_a"].GetSpecVersion() || got["abc_d"] != nil || got["abc_b"] == nil {
		t.Errorf("after the dry run: a at version %d, d %v, b %v", got["abc_a"].GetSpecVersion(), got["abc_d"] != nil, got["abc_b"] != nil)
	}
}

// TestE2EWait waits for a service to converge and for a node to drain on
// a real cluster, and fails with the reason when tasks exit beyond their
// restart policy.
func TestE2EWait(t *testing.T) {
	e := startE2E(t, 3)
	r := e.run("service", "create", "--name", "web", "--replicas", "4", "--timeout", "60s", "busybox:1.36")
	if r.code != 0 || !strings.Contains(r.stderr, "web: converged (4/4)") {
		t.Fatalf("create: exit %d\nstderr: %s", r.code, r.stderr)
	}
	r = e.run("node", "update", "--availability", "drain", "--timeout", "60s", "worker-1")
	if r.code != 0 || !strings.Contains(r.stderr, "worker-1: drained") {
		t.Fatalf("drain: exit %d\nstderr: %s", r.code, r.stderr)
	}
	resp, err := e.cluster.Client(0).ListTasks(t.Context(), &shoalpb.ListTasksRequest{Node: "worker-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range resp.GetTasks() {
		if task.GetStatus().GetState() == "running" {
			t.Errorf("task %s still runs on the drained node", task.GetId())
		}
	}
	if out := e.mustRun("service", "ls", "-f", "name=web"); !strings.Contains(out, "4/4") {
		t.Errorf("after the drain:\n%s", out)
	}

	for _, rt := range e.runtimes {
		rt.ScriptImage("busybox:crash", fake.Script{RunFor: 50 * time.Millisecond, ExitCode: 3})
	}
	r = e.run("service", "create", "--name", "crash", "--restart-condition", "none", "--timeout", "60s", "busybox:crash")
	if r.code == 0 || !strings.Contains(r.stderr, "crash did not converge: crash.1 failed on worker-") ||
		!strings.Contains(r.stderr, "will not be restarted (restart condition none)") {
		t.Errorf("crashing service: exit %d\nstderr: %s", r.code, r.stderr)
	}
	// Under restart condition any the slot fails again and again.
	r = e.run("service", "create", "--name", "flap", "--restart-delay", "10ms", "--timeout", "60s", "busybox:crash")
	// Polls may miss a failure in between: at least 3 are counted.
	if r.code == 0 || !strings.Contains(r.stderr, "flap did not converge: flap.1 failed ") ||
		!strings.Contains(r.stderr, " times since shoalctl started waiting (last: task: non-zero exit (3))") {
		t.Errorf("flapping service: exit %d\nstderr: %s", r.code, r.stderr)
	}
}

// syncBuffer is a strings.Builder safe for the progress writer and the
// test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
