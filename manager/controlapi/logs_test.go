package controlapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// testAgent is an agent run in the test process on a loopback port.
type testAgent struct {
	a    *agent.Agent
	name string
	stop func()
}

// startAgent runs a real agent with rt at the Seam, joined to manager 0,
// until stop or the end of the test.
func startAgent(t testing.TB, c *managertest.Cluster, name string, rt agent.Runtime, dataDir string) *testAgent {
	t.Helper()
	creds := c.AgentCredentials(dataDir)
	a, err := agent.New(agent.Config{
		DataDir: dataDir, Join: []string{c.Addr(0)}, AdvertiseAddr: "127.0.0.1:0", Hostname: name,
		Credentials: creds, Plaintext: creds == nil,
		Runtime: rt, Resources: api.Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30},
		HeartbeatInterval: 200 * time.Millisecond, StatusDelay: 10 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("agent %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent %s: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("agent %s did not stop within 30s", name)
		}
	}
	t.Cleanup(stop)
	return &testAgent{a: a, name: name, stop: stop}
}

// runningTasks waits until the service has n running tasks and returns
// them by id.
func runningTasks(t testing.TB, c *managertest.Cluster, service string, n int) map[string]*shoalpb.Task {
	t.Helper()
	var out map[string]*shoalpb.Task
	c.WaitFor(waitTimeout, func() error {
		resp, err := c.Client(0).ListTasks(t.Context(), &shoalpb.ListTasksRequest{Service: service})
		if err != nil {
			return err
		}
		out = map[string]*shoalpb.Task{}
		for _, task := range resp.GetTasks() {
			if task.GetStatus().GetState() == "running" {
				out[task.GetId()] = task
			}
		}
		if len(out) != n {
			return fmt.Errorf("%d of %d tasks of %s running", len(out), n, service)
		}
		return nil
	})
	return out
}

// lineStream is the client end of ServiceLogs.
type lineStream interface {
	Recv() (*shoalpb.LogLine, error)
}

// collect reads a log stream to its end; the error is nil at EOF.
func collect(stream lineStream) ([]*shoalpb.LogLine, error) {
	var out []*shoalpb.LogLine
	for {
		l, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
}

// byTask groups the texts of container lines by task, and returns the
// error lines apart.
func byTask(lines []*shoalpb.LogLine) (map[string][]string, []*shoalpb.LogLine) {
	out := map[string][]string{}
	var errs []*shoalpb.LogLine
	for _, l := range lines {
		if l.GetStream() == shoalpb.LogStreamError {
			errs = append(errs, l)
			continue
		}
		out[l.GetTaskId()] = append(out[l.GetTaskId()], string(l.GetLine()))
	}
	return out, errs
}

// checkTagged fails unless every container line names a task of tasks
// with that task's node and slot, and has a time.
func checkTagged(t *testing.T, lines []*shoalpb.LogLine, tasks map[string]*shoalpb.Task) {
	t.Helper()
	for _, l := range lines {
		if l.GetStream() == shoalpb.LogStreamError {
			continue
		}
		task := tasks[l.GetTaskId()]
		switch {
		case task == nil:
			t.Errorf("line %q of task %q, which is not a running task of the service", l.GetLine(), l.GetTaskId())
		case l.GetNodeId() != task.GetNodeId() || l.GetSlot() != task.GetSlot():
			t.Errorf("line of task %s tagged node %s slot %d, want node %s slot %d",
				task.GetId(), l.GetNodeId(), l.GetSlot(), task.GetNodeId(), task.GetSlot())
		case l.GetTime() == nil || l.GetStream() != shoalpb.LogStreamStdout:
			t.Errorf("line %v: want a time and stream stdout", l)
		}
	}
}

// TestServiceLogs runs three managers (real Raft) and two agents with the
// fake runtime, and asks a follower for the logs of a three-task service:
// the follower dials the agents itself.
func TestServiceLogs(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{Edit: func(cfg *manager.Config) {
		// The agent stopped below must stay on record with its tasks, not
		// be replaced while the test looks at it.
		cfg.NodeGracePeriod = time.Hour
	}})
	f := (c.WaitLeader(waitTimeout) + 1) % 3
	rts := []*fake.Runtime{fake.New(), fake.New()}
	var agents []*testAgent
	for i, rt := range rts {
		rt.ScriptImage("img", fake.Script{Logs: []string{"one", "two", "three"}})
		agents = append(agents, startAgent(t, c, fmt.Sprintf("worker-%d", i+1), rt, t.TempDir()))
	}
	cl := c.Client(f)
	if _, err := cl.CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
		Name: "web", Image: "img", Mode: "replicated", Replicas: 3,
	}}); err != nil {
		t.Fatal(err)
	}
	tasks := runningTasks(t, c, "web", 3)
	// The follower answers from its own state: wait until it sees them run.
	c.WaitFor(waitTimeout, func() error {
		resp, err := cl.ListTasks(t.Context(), &shoalpb.ListTasksRequest{Service: "web", Stale: true})
		if err != nil {
			return err
		}
		for _, task := range resp.GetTasks() {
			if task.GetStatus().GetState() != "running" {
				return fmt.Errorf("the follower has task %s %s", task.GetId(), task.GetStatus().GetState())
			}
		}
		return nil
	})

	t.Run("read", func(t *testing.T) { testLogsRead(t, cl, tasks) })
	t.Run("one task and since", func(t *testing.T) { testLogsTaskAndSince(t, cl, tasks) })
	t.Run("bad requests", func(t *testing.T) { testLogsBadRequests(t, cl) })
	t.Run("follow", func(t *testing.T) { testLogsFollow(t, c, cl, rts, tasks) })
	t.Run("unreachable node", func(t *testing.T) { testLogsUnreachable(t, cl, agents) })
}

func testLogsRead(t *testing.T, cl shoalpb.ControlClient, tasks map[string]*shoalpb.Task) {
	tests := []struct {
		name    string
		service string
		tail    int64
		want    []string // per task
	}{
		{"all by name", "web", -1, []string{"one", "two", "three"}},
		{"tail 1", "web", 1, []string{"three"}},
		{"tail 2 by id", firstTask(tasks).GetServiceId(), 2, []string{"two", "three"}},
		{"tail 0", "web", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := cl.ServiceLogs(t.Context(), &shoalpb.ServiceLogsRequest{Service: tc.service, Tail: tc.tail})
			if err != nil {
				t.Fatal(err)
			}
			lines, err := collect(stream)
			if err != nil {
				t.Fatalf("stream ended with %v after %d lines", err, len(lines))
			}
			got, errs := byTask(lines)
			if len(errs) > 0 {
				t.Fatalf("error lines: %v", errs)
			}
			checkTagged(t, lines, tasks)
			if tc.want == nil {
				if len(lines) != 0 {
					t.Fatalf("got %d lines, want none", len(lines))
				}
				return
			}
			for id := range tasks {
				if !slices.Equal(got[id], tc.want) {
					t.Errorf("task %s: lines %q, want %q", id, got[id], tc.want)
				}
			}
		})
	}
}

func firstTask(tasks map[string]*shoalpb.Task) *shoalpb.Task {
	for _, t := range tasks {
		return t
	}
	return nil
}

func testLogsBadRequests(t *testing.T, cl shoalpb.ControlClient) {
	tests := []struct {
		name  string
		req   *shoalpb.ServiceLogsRequest
		code  codes.Code
		parts []string
	}{
		{"tail below -1", &shoalpb.ServiceLogsRequest{Service: "web", Tail: -2}, codes.InvalidArgument, []string{`tail "-2"`}},
		{"no service", &shoalpb.ServiceLogsRequest{Tail: -1}, codes.InvalidArgument, []string{"service"}},
		{"unknown service", &shoalpb.ServiceLogsRequest{Service: "nope", Tail: -1}, codes.NotFound, []string{`"nope"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := cl.ServiceLogs(t.Context(), tc.req)
			if err == nil {
				var lines []*shoalpb.LogLine
				lines, err = collect(stream)
				if len(lines) > 0 {
					t.Fatalf("got lines %v for a bad request", lines)
				}
			}
			wantCode(t, err, tc.code, tc.parts...)
		})
	}
}

// recvUntil reads lines from a followed stream until have holds, or fails
// after waitTimeout (the stream's context bounds the reads).
func recvUntil(t *testing.T, stream lineStream,
	lines *[]*shoalpb.LogLine, have func() bool,
) {
	t.Helper()
	for !have() {
		l, err := stream.Recv()
		if err != nil {
			t.Fatalf("followed stream ended with %v; got %d lines: %v", err, len(*lines), *lines)
		}
		*lines = append(*lines, l)
	}
}

func testLogsFollow(t *testing.T, c *managertest.Cluster, cl shoalpb.ControlClient, rts []*fake.Runtime, tasks map[string]*shoalpb.Task) {
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	stream, err := cl.ServiceLogs(ctx, &shoalpb.ServiceLogsRequest{Service: "web", Tail: 1, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	var lines []*shoalpb.LogLine
	// Each task's tail line shows that its agent follows it now.
	recvUntil(t, stream, &lines, func() bool { got, _ := byTask(lines); return len(got) == len(tasks) })
	printed := firstTask(tasks)
	printedOn := runtimeOf(t, rts, printed.GetId())
	printedOn.Print(printed.GetId(), "four")
	recvUntil(t, stream, &lines, func() bool { got, _ := byTask(lines); return len(got[printed.GetId()]) == 2 })
	got, errs := byTask(lines)
	if !slices.Equal(got[printed.GetId()], []string{"three", "four"}) || len(errs) > 0 {
		t.Fatalf("task %s: followed %q (errors %v), want three then four", printed.GetId(), got[printed.GetId()], errs)
	}
	checkTagged(t, lines, tasks)

	// A task that starts while the stream runs joins it.
	if _, err := cl.ScaleService(ctx, &shoalpb.ScaleServiceRequest{Service: "web", Replicas: 4}); err != nil {
		t.Fatal(err)
	}
	all := runningTasks(t, c, "web", 4)
	recvUntil(t, stream, &lines, func() bool { got, _ := byTask(lines); return len(got) == 4 })
	checkTagged(t, lines, all)
	cancel()
	if _, err := collect(stream); status.Code(err) != codes.Canceled && status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("followed stream after cancel: %v, want Canceled", err)
	}
	if _, err := cl.ScaleService(t.Context(), &shoalpb.ScaleServiceRequest{Service: "web", Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	runningTasks(t, c, "web", 3)
}

func runtimeOf(t *testing.T, rts []*fake.Runtime, taskID string) *fake.Runtime {
	t.Helper()
	for _, rt := range rts {
		if rt.Task(taskID) != nil {
			return rt
		}
	}
	t.Fatalf("no runtime has a container for task %s", taskID)
	return nil
}

func testLogsUnreachable(t *testing.T, cl shoalpb.ControlClient, agents []*testAgent) {
	gone := agents[1]
	goneID, goneAddr := gone.a.NodeID(), gone.a.Addr()
	gone.stop()
	tasks := map[string]*shoalpb.Task{}
	resp, err := cl.ListTasks(t.Context(), &shoalpb.ListTasksRequest{Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	onGone := 0
	for _, task := range resp.GetTasks() {
		if task.GetStatus().GetState() == "running" {
			tasks[task.GetId()] = task
			if task.GetNodeId() == goneID {
				onGone++
			}
		}
	}
	if onGone == 0 || onGone == len(tasks) {
		t.Fatalf("%d of %d running tasks on the stopped node; want some on each node", onGone, len(tasks))
	}
	tests := []struct {
		name  string
		setup func(t *testing.T)
		want  string
	}{
		{"refused", func(*testing.T) {}, "connection refused"},
		{"silent", func(t *testing.T) {
			// Something that takes the connection and never speaks gRPC:
			// the dial must give up on its own.
			lis, err := net.Listen("tcp", goneAddr)
			if err != nil {
				t.Fatalf("listen on the stopped agent's address: %v", err)
			}
			t.Cleanup(func() { lis.Close() })
		}, "did not answer within"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup(t)
			stream, err := cl.ServiceLogs(t.Context(), &shoalpb.ServiceLogsRequest{Service: "web", Tail: -1})
			if err != nil {
				t.Fatal(err)
			}
			lines, err := collect(stream)
			if err != nil {
				t.Fatalf("one unreachable node failed the whole call: %v", err)
			}
			checkOneNodeMissing(t, lines, tasks, goneID, gone.name, tc.want)
		})
	}
}

// checkOneNodeMissing checks that lines hold one error line about node
// gone and the whole logs of the tasks on other nodes.
func checkOneNodeMissing(t *testing.T, lines []*shoalpb.LogLine, tasks map[string]*shoalpb.Task, gone, hostname, why string) {
	t.Helper()
	got, errs := byTask(lines)
	if len(errs) != 1 || errs[0].GetNodeId() != gone {
		t.Fatalf("error lines %v; want one for node %s", errs, gone)
	}
	msg := string(errs[0].GetLine())
	for _, part := range []string{gone, hostname, why} {
		if !strings.Contains(msg, part) {
			t.Errorf("error line %q does not contain %q", msg, part)
		}
	}
	for id, task := range tasks {
		// The follow test printed a fourth line to one of them.
		ok := len(got[id]) >= 3 && slices.Equal(got[id][:3], []string{"one", "two", "three"})
		if task.GetNodeId() == gone {
			ok = len(got[id]) == 0
		}
		if !ok {
			t.Errorf("task %s on node %s: lines %q; want one, two, three from a live node, none from %s",
				id, task.GetNodeId(), got[id], gone)
		}
	}
}

// BenchmarkServiceLogs reads 10,000 lines of one task through a manager
// from a fake-runtime agent, per op: the relay's throughput in lines/s.
func BenchmarkServiceLogs(b *testing.B) {
	const n = 10000
	c := managertest.StartCluster(b, 1, managertest.Options{})
	rt := fake.New()
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf("%05d GET /index.html 200 1234 bytes in 0.3 ms", i)
	}
	rt.ScriptImage("img", fake.Script{Logs: lines})
	startAgent(b, c, "worker-1", rt, b.TempDir())
	cl := c.Client(0)
	if _, err := cl.CreateService(b.Context(), &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
		Name: "web", Image: "img", Mode: "replicated", Replicas: 1,
	}}); err != nil {
		b.Fatal(err)
	}
	runningTasks(b, c, "web", 1)
	b.ResetTimer()
	for b.Loop() {
		stream, err := cl.ServiceLogs(b.Context(), &shoalpb.ServiceLogsRequest{Service: "web", Tail: -1})
		if err != nil {
			b.Fatal(err)
		}
		got, err := collect(stream)
		if err != nil || len(got) != n {
			b.Fatalf("%d lines (%v), want %d", len(got), err, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "lines/s")
}
