package ctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// testNow is the injected clock of every test, so that "2 minutes ago"
// stays the same in the golden files.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func at(ago time.Duration) *timestamppb.Timestamp { return timestamppb.New(testNow.Add(-ago)) }

// fakeControl is a hand-written Control server at the gRPC seam: it keeps
// services, tasks and nodes in memory and answers as the manager's API
// contract says, recording every request it is sent.
type fakeControl struct {
	shoalpb.UnimplementedControlServer

	mu       sync.Mutex
	services []*shoalpb.Service
	tasks    []*shoalpb.Task
	nodes    []*shoalpb.NodeSummary
	cluster  *shoalpb.ClusterStatusResponse
	// unavailable, when set, is the message of the Unavailable error every
	// call gets (a manager without a leader).
	unavailable string
	// raceUpdate makes GetService return the service and then bump its
	// version, as if another client changed it right after the read.
	raceUpdate bool
	// hang makes ClusterStatus wait until the caller gives up.
	hang     bool
	requests []proto.Message
	index    uint64
	// events are sent to every Events stream, then the stream ends, or
	// with holdEvents stays open until the client leaves.
	events     []*shoalpb.Event
	holdEvents bool
	// onListTasks, when set, changes the state before ListTasks answers:
	// it plays the orchestrator, scheduler and agents for tests that wait.
	onListTasks func(f *fakeControl)
	// networks are served by the network calls (fake_network_test.go).
	networks []*shoalpb.NetworkSummary
	// secrets are served by the secret calls (fake_secret_test.go).
	secrets []*shoalpb.Secret
}

// fixtureSpec, fixtureNode and fixtureTask build the fake's cluster.
func fixtureSpec(name, mode string, replicas uint64) *shoalpb.ServiceSpec {
	return &shoalpb.ServiceSpec{
		Name: name, Image: "busybox:1.36", Mode: mode, Replicas: replicas,
		Args:         []string{"httpd", "-f"},
		Env:          []string{"LOG=info"},
		Labels:       map[string]string{"tier": "front"},
		Reservations: &shoalpb.Resources{NanoCpus: 500_000_000, MemoryBytes: 64 << 20},
		Limits:       &shoalpb.Resources{MemoryBytes: 128 << 20},
		Placement:    &shoalpb.Placement{Strategy: "spread", Constraints: []string{"node.labels.zone==a"}},
		RestartPolicy: &shoalpb.RestartPolicy{
			Condition: "any", Delay: durationpb.New(5 * time.Second),
		},
		UpdateConfig:    &shoalpb.UpdateConfig{Parallelism: 1, FailureAction: "pause", Order: "stop-first"},
		StopGracePeriod: durationpb.New(10 * time.Second),
	}
}

func fixtureNode(id, host, status, avail, role string, cpus, mem int64, zone string) *shoalpb.Node {
	return &shoalpb.Node{
		Id: id, Hostname: host, Addr: "10.0.0." + id[len(id)-1:], Role: role, Availability: avail,
		Status: status, Labels: map[string]string{"zone": zone},
		Resources: &shoalpb.Resources{NanoCpus: cpus * 1e9, MemoryBytes: mem}, Version: 4,
		CreatedAt: at(72 * time.Hour), UpdatedAt: at(time.Hour),
	}
}

func fixtureTask(id, svc string, slot uint64, nodeID, desired, state string, ago time.Duration) *shoalpb.Task {
	return &shoalpb.Task{
		Id: id, ServiceId: "svc" + svc + "0123456789abcdef", ServiceName: svc, Slot: slot, NodeId: nodeID,
		SpecVersion: 2, Spec: &shoalpb.ServiceSpec{Image: "busybox:1.36"}, DesiredState: desired,
		Status:    &shoalpb.TaskStatus{State: state, Timestamp: at(ago)},
		CreatedAt: at(ago + time.Second), UpdatedAt: at(ago),
	}
}

// newFakeControl returns a fake holding a small cluster: three nodes, a
// replicated service "web" and a global service "agent".
func newFakeControl() *fakeControl {
	spec, node, task := fixtureSpec, fixtureNode, fixtureTask
	f := &fakeControl{index: 40}
	f.services = []*shoalpb.Service{
		{Id: "svcweb0123456789abcdef", Spec: spec("web", "replicated", 3), SpecVersion: 2, CreatedAt: at(24 * time.Hour), UpdatedAt: at(10 * time.Minute)},
		{Id: "svcagent0123456789abcdef", Spec: spec("agent", "global", 0), SpecVersion: 1, CreatedAt: at(72 * time.Hour), UpdatedAt: at(72 * time.Hour)},
	}
	f.nodes = []*shoalpb.NodeSummary{
		{Node: node("nodeworker1aaaaaaaaaaaa1", "worker-1", "ready", "active", "worker", 4, 8<<30, "a"),
			Reserved: &shoalpb.Resources{NanoCpus: 1_500_000_000, MemoryBytes: 1 << 30}, Tasks: 3},
		{Node: node("nodeworker2bbbbbbbbbbbb2", "worker-2", "down", "drain", "worker", 2, 4<<30, "b"),
			Reserved: &shoalpb.Resources{}, Tasks: 0},
		{Node: node("nodemanager1cccccccccc3", "manager-1", "ready", "active", "manager", 2, 2<<30, "a"),
			Reserved: &shoalpb.Resources{NanoCpus: 500_000_000, MemoryBytes: 256 << 20}, Tasks: 1, ManagerStatus: "leader"},
	}
	failed := task("taskweb1old00000000000", "web", 1, "nodeworker2bbbbbbbbbbbb2", "shutdown", "failed", 10*time.Minute)
	failed.Status.Err = "task: non-zero exit (1)"
	pending := task("taskweb3000000000000000", "web", 3, "", "running", "pending", 45*time.Second)
	pending.Status.PendingReason = "no suitable node (insufficient memory on 1 node; node worker-2 is down)"
	f.tasks = []*shoalpb.Task{
		task("taskweb1new00000000000", "web", 1, "nodeworker1aaaaaaaaaaaa1", "running", "running", 2*time.Minute),
		failed,
		task("taskweb2000000000000000", "web", 2, "nodemanager1cccccccccc3", "running", "running", 2*time.Hour),
		pending,
		task("taskagentw1000000000000", "agent", 0, "nodeworker1aaaaaaaaaaaa1", "running", "running", 72*time.Hour),
		task("taskagentm1000000000000", "agent", 0, "nodemanager1cccccccccc3", "running", "preparing", 5*time.Second),
	}
	f.cluster = &shoalpb.ClusterStatusResponse{
		ClusterId: "clu-7f3a", LeaderId: "m1", LeaderAddr: "10.0.0.1:4242", Term: 3,
		LastIndex: 120, CommitIndex: 120, AppliedIndex: 119, AnsweredBy: "m2",
		Settings: &shoalpb.ClusterSettings{MaxReplicas: 10000},
		Managers: []*shoalpb.Manager{
			{Id: "m2", Addr: "10.0.0.2:4242", RaftAddr: "10.0.0.2:4243", RaftState: "follower", Voter: true, Reachable: true},
			{Id: "m1", Addr: "10.0.0.1:4242", RaftAddr: "10.0.0.1:4243", RaftState: "leader", Voter: true, Reachable: true},
			{Id: "m3", Addr: "10.0.0.3:4242", RaftAddr: "10.0.0.3:4243", Voter: true, Reachable: false},
		},
	}
	return f
}

// record notes a request and returns the Unavailable error if the fake
// plays a manager without a leader. Callers hold f.mu.
func (f *fakeControl) record(req proto.Message) error {
	f.requests = append(f.requests, proto.Clone(req))
	if f.unavailable != "" {
		return status.Error(codes.Unavailable, f.unavailable)
	}
	return nil
}

// handle answers one unary call: under the lock, it records req and, unless
// the fake plays a manager without a leader, returns what answer says.
func handle[Req proto.Message, Resp any](f *fakeControl, req Req, answer func() (Resp, error)) (Resp, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(req); err != nil {
		var zero Resp
		return zero, err
	}
	return answer()
}

// sent returns the requests of type T the fake received.
func sent[T proto.Message](f *fakeControl) []T {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []T
	for _, r := range f.requests {
		if m, ok := r.(T); ok {
			out = append(out, m)
		}
	}
	return out
}

func (f *fakeControl) findService(ref string) (*shoalpb.Service, error) {
	for _, s := range f.services {
		if s.GetId() == ref || s.GetSpec().GetName() == ref {
			return s, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "service %q not found", ref)
}

func (f *fakeControl) findNode(ref string) (*shoalpb.NodeSummary, error) {
	for _, n := range f.nodes {
		if n.GetNode().GetId() == ref || n.GetNode().GetHostname() == ref {
			return n, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "node %q not found", ref)
}

// plan is the fake's dry-run answer: one task per replica, round robin on
// the ready nodes.
func (f *fakeControl) plan(action string, spec *shoalpb.ServiceSpec, changes []*shoalpb.FieldChange) *shoalpb.Plan {
	p := &shoalpb.Plan{Action: action, Changes: changes}
	for slot := uint64(1); slot <= spec.GetReplicas(); slot++ {
		n := f.nodes[int(slot-1)%len(f.nodes)].GetNode()
		if n.GetStatus() != "ready" {
			p.Tasks = append(p.Tasks, &shoalpb.PlannedTask{Slot: slot, Action: "start", Reason: "no suitable node (node worker-2 is down)"})
			continue
		}
		p.Tasks = append(p.Tasks, &shoalpb.PlannedTask{Slot: slot, NodeId: n.GetId(), Hostname: n.GetHostname(), Action: "start"})
	}
	return p
}

func (f *fakeControl) CreateService(_ context.Context, req *shoalpb.CreateServiceRequest) (*shoalpb.ServiceWriteResponse, error) {
	return handle(f, req, func() (*shoalpb.ServiceWriteResponse, error) {
		name := req.GetSpec().GetName()
		if _, err := f.findService(name); err == nil {
			return nil, status.Errorf(codes.AlreadyExists, "service %q already exists", name)
		}
		svc := &shoalpb.Service{Id: "svc" + name + "new0000000000", Spec: req.GetSpec(), SpecVersion: 1}
		if req.GetDryRun() {
			// Like the manager, a dry create answers with the plan only.
			changes := []*shoalpb.FieldChange{
				{Field: "image", New: req.GetSpec().GetImage()},
				{Field: "name", New: name},
				{Field: "replicas", New: fmt.Sprint(req.GetSpec().GetReplicas())},
			}
			return &shoalpb.ServiceWriteResponse{Plan: f.plan("create", req.GetSpec(), changes)}, nil
		}
		f.index++
		f.services = append(f.services, svc)
		return &shoalpb.ServiceWriteResponse{Service: svc, Index: f.index}, nil
	})
}

func (f *fakeControl) UpdateService(_ context.Context, req *shoalpb.UpdateServiceRequest) (*shoalpb.ServiceWriteResponse, error) {
	return handle(f, req, func() (*shoalpb.ServiceWriteResponse, error) {
		svc, err := f.findService(req.GetService())
		if err != nil {
			return nil, err
		}
		if v := req.GetExpectedVersion(); v != 0 && v != svc.GetSpecVersion() {
			return nil, status.Errorf(codes.FailedPrecondition, "version conflict: service is at version %d, update expected %d", svc.GetSpecVersion(), v)
		}
		if req.GetDryRun() {
			changes := []*shoalpb.FieldChange{{Field: "image", Old: svc.GetSpec().GetImage(), New: req.GetSpec().GetImage()}}
			return &shoalpb.ServiceWriteResponse{Service: svc, Plan: f.plan("update", req.GetSpec(), changes)}, nil
		}
		svc.Spec, svc.SpecVersion = req.GetSpec(), svc.GetSpecVersion()+1
		f.index++
		return &shoalpb.ServiceWriteResponse{Service: svc, Index: f.index}, nil
	})
}

func (f *fakeControl) ScaleService(_ context.Context, req *shoalpb.ScaleServiceRequest) (*shoalpb.ServiceWriteResponse, error) {
	return handle(f, req, func() (*shoalpb.ServiceWriteResponse, error) {
		svc, err := f.findService(req.GetService())
		if err != nil {
			return nil, err
		}
		if svc.GetSpec().GetMode() == "global" {
			return nil, status.Errorf(codes.FailedPrecondition, "service %q is global; only replicated services can be scaled", svc.GetSpec().GetName())
		}
		if !req.GetDryRun() {
			svc.Spec.Replicas = req.GetReplicas()
			f.index++
		}
		return &shoalpb.ServiceWriteResponse{Service: svc, Index: f.index}, nil
	})
}

func (f *fakeControl) RemoveService(_ context.Context, req *shoalpb.RemoveServiceRequest) (*shoalpb.RemoveServiceResponse, error) {
	return handle(f, req, func() (*shoalpb.RemoveServiceResponse, error) {
		svc, err := f.findService(req.GetService())
		if err != nil {
			return nil, err
		}
		f.services = slices.DeleteFunc(f.services, func(s *shoalpb.Service) bool { return s == svc })
		f.index++
		return &shoalpb.RemoveServiceResponse{Index: f.index}, nil
	})
}

func (f *fakeControl) GetService(_ context.Context, req *shoalpb.GetServiceRequest) (*shoalpb.Service, error) {
	return handle(f, req, func() (*shoalpb.Service, error) {
		svc, err := f.findService(req.GetService())
		if err != nil {
			return nil, err
		}
		read := proto.Clone(svc).(*shoalpb.Service)
		if f.raceUpdate {
			svc.SpecVersion++
		}
		return read, nil
	})
}

func (f *fakeControl) ListServices(_ context.Context, req *shoalpb.ListServicesRequest) (*shoalpb.ListServicesResponse, error) {
	return handle(f, req, func() (*shoalpb.ListServicesResponse, error) {
		resp := &shoalpb.ListServicesResponse{}
		for _, s := range f.services {
			sum := &shoalpb.ServiceSummary{Service: s, Desired: s.GetSpec().GetReplicas()}
			if s.GetSpec().GetMode() == "global" {
				sum.Desired = 2 // the ready nodes
			}
			for _, t := range f.tasks {
				if t.GetServiceName() == s.GetSpec().GetName() && t.GetStatus().GetState() == "running" {
					sum.Running++
				}
			}
			resp.Services = append(resp.Services, sum)
		}
		return resp, nil
	})
}

func (f *fakeControl) ListTasks(_ context.Context, req *shoalpb.ListTasksRequest) (*shoalpb.ListTasksResponse, error) {
	return handle(f, req, func() (*shoalpb.ListTasksResponse, error) {
		if f.onListTasks != nil {
			f.onListTasks(f)
		}
		resp := &shoalpb.ListTasksResponse{}
		if req.GetNode() != "" {
			n, err := f.findNode(req.GetNode())
			if err != nil {
				return nil, err
			}
			for _, t := range f.tasks {
				if t.GetNodeId() == n.GetNode().GetId() {
					resp.Tasks = append(resp.Tasks, t)
				}
			}
			return resp, nil
		}
		if req.GetService() == "" {
			resp.Tasks = append(resp.Tasks, f.tasks...)
			return resp, nil
		}
		svc, err := f.findService(req.GetService())
		if err != nil {
			return nil, err
		}
		for _, t := range f.tasks {
			if t.GetServiceId() == svc.GetId() {
				resp.Tasks = append(resp.Tasks, t)
			}
		}
		return resp, nil
	})
}

func (f *fakeControl) ListNodes(_ context.Context, req *shoalpb.ListNodesRequest) (*shoalpb.ListNodesResponse, error) {
	return handle(f, req, func() (*shoalpb.ListNodesResponse, error) {
		// Pages as the manager's do (its token is opaque; the fake's is an offset).
		from, _ := strconv.Atoi(req.GetPageToken())
		nodes := f.nodes[min(from, len(f.nodes)):]
		if size := int(req.GetPageSize()); size > 0 && len(nodes) > size {
			return &shoalpb.ListNodesResponse{Nodes: nodes[:size], NextPageToken: strconv.Itoa(from + size)}, nil
		}
		return &shoalpb.ListNodesResponse{Nodes: nodes}, nil
	})
}

func (f *fakeControl) GetNode(_ context.Context, req *shoalpb.GetNodeRequest) (*shoalpb.Node, error) {
	return handle(f, req, func() (*shoalpb.Node, error) {
		n, err := f.findNode(req.GetNode())
		return n.GetNode(), err
	})
}

func (f *fakeControl) UpdateNode(_ context.Context, req *shoalpb.UpdateNodeRequest) (*shoalpb.Node, error) {
	return handle(f, req, func() (*shoalpb.Node, error) {
		sum, err := f.findNode(req.GetNode())
		if err != nil {
			return nil, err
		}
		n := sum.GetNode()
		if a := req.GetAvailability(); a != "" {
			n.Availability = a
		}
		for k, v := range req.GetLabelAdd() {
			n.Labels[k] = v
		}
		for _, k := range req.GetLabelRm() {
			delete(n.Labels, k)
		}
		n.Version++
		return n, nil
	})
}

func (f *fakeControl) RemoveNode(_ context.Context, req *shoalpb.RemoveNodeRequest) (*shoalpb.RemoveNodeResponse, error) {
	return handle(f, req, func() (*shoalpb.RemoveNodeResponse, error) {
		sum, err := f.findNode(req.GetNode())
		if err != nil {
			return nil, err
		}
		if sum.GetNode().GetStatus() == "ready" && !req.GetForce() {
			return nil, status.Errorf(codes.FailedPrecondition, "node %q is ready: drain it first, or use --force", sum.GetNode().GetHostname())
		}
		f.nodes = slices.DeleteFunc(f.nodes, func(n *shoalpb.NodeSummary) bool { return n == sum })
		f.index++
		return &shoalpb.RemoveNodeResponse{Index: f.index}, nil
	})
}

func (f *fakeControl) ClusterStatus(ctx context.Context, req *shoalpb.ClusterStatusRequest) (*shoalpb.ClusterStatusResponse, error) {
	f.mu.Lock()
	err := f.record(req)
	hang := f.hang
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if hang {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return f.cluster, nil
}

// UpdateCluster changes the settings ClusterStatus answers with, refusing
// what the manager would (no service of the fake has more than 3 replicas).
func (f *fakeControl) UpdateCluster(_ context.Context, req *shoalpb.UpdateClusterRequest) (*shoalpb.UpdateClusterResponse, error) {
	return handle(f, req, func() (*shoalpb.UpdateClusterResponse, error) {
		if req.MaxReplicas != nil {
			switch n := req.GetMaxReplicas(); {
			case n == 0:
				f.cluster.Settings.MaxReplicas = 10000
			case n < 3:
				return nil, status.Errorf(codes.InvalidArgument, "max_replicas %q: service %q has 3 replicas; scale it down first", fmt.Sprint(n), "web")
			default:
				f.cluster.Settings.MaxReplicas = n
			}
		}
		f.index++
		return &shoalpb.UpdateClusterResponse{Settings: f.cluster.Settings, Index: f.index}, nil
	})
}

func (f *fakeControl) Events(req *shoalpb.EventsRequest, stream grpc.ServerStreamingServer[shoalpb.Event]) error {
	f.mu.Lock()
	err := f.record(req)
	events, hold := f.events, f.holdEvents
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	for _, ev := range events {
		if !fakeEventMatch(req.GetFilters(), ev) {
			continue
		}
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	if hold {
		<-stream.Context().Done()
	}
	return nil
}

// fakeEventMatch applies the manager's filters: type= and service= only.
func fakeEventMatch(filters []string, ev *shoalpb.Event) bool {
	for _, f := range filters {
		k, v, _ := strings.Cut(f, "=")
		switch {
		case k == "type" && ev.GetType() != v:
			return false
		case k == "service" && ev.GetName() != v && ev.GetAttributes()["service"] != v:
			return false
		}
	}
	return true
}

// serveTCP serves f on an ephemeral loopback port and returns HOST:PORT.
func serveTCP(t testing.TB, f shoalpb.ControlServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	serve(t, f, lis, grpc.Creds(credentials.NewTLS(testServerTLS)))
	return lis.Addr().String()
}

// serveUnix serves f on a unix socket in a fresh directory and returns
// unix://PATH. The directory is short because socket paths are limited to
// about 100 bytes, which a test's TempDir can exceed.
func serveUnix(t testing.TB, f *fakeControl) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "shoalctl")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "control.sock")
	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	serve(t, f, lis)
	return "unix://" + path
}

func serve(t testing.TB, f shoalpb.ControlServer, lis net.Listener, opts ...grpc.ServerOption) {
	t.Helper()
	srv := grpc.NewServer(opts...)
	shoalpb.RegisterControlServer(srv, f)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		// Stop before Serve has started makes Serve return ErrServerStopped.
		if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("fake control server: %v", err)
		}
	})
}

// result is what one shoalctl run printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// fakeClock is the tests' clock: it starts at testNow and moves only when
// shoalctl sleeps, so waits and timeouts run at once and the same way.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return ctx.Err()
}

// testApp is an App writing into buffers, with a fresh fake clock, no
// terminal and env as its environment.
func testApp(host string, env ...string) (*App, *strings.Builder, *strings.Builder) {
	var out, errOut strings.Builder
	clock := &fakeClock{now: testNow}
	app := &App{
		Out: &out, Err: &errOut, Now: clock.Now, Sleep: clock.Sleep,
		Getenv: func(k string) string {
			switch k {
			case HostEnv:
				return host
			case CertPathEnv:
				return testCertDir
			}
			return ""
		},
		Environ: func() []string { return env },
	}
	return app, &out, &errOut
}

// runCLI runs shoalctl against host (given through SHOAL_HOST) with the
// test clock.
func runCLI(t testing.TB, host string, args ...string) result {
	t.Helper()
	app, out, errOut := testApp(host)
	code := Execute(t.Context(), app, args)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// mustRun runs shoalctl and fails the test unless it exits 0.
func mustRun(t *testing.T, host string, args ...string) string {
	t.Helper()
	r := runCLI(t, host, args...)
	if r.code != 0 {
		t.Fatalf("shoalctl %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// mustFail runs shoalctl and fails the test unless it exits 1 with an
// "Error: " line (after any progress lines) and stderr contains every one
// of want.
func mustFail(t *testing.T, host string, args []string, want ...string) result {
	t.Helper()
	r := runCLI(t, host, args...)
	if r.code != 1 || !strings.HasPrefix(r.stderr[strings.LastIndex("\n"+r.stderr, "\nError: "):], "Error: ") {
		t.Fatalf("shoalctl %s: exit %d, stderr %q; want exit 1 with Error:", strings.Join(args, " "), r.code, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("shoalctl %s: stderr %q does not contain %q", strings.Join(args, " "), r.stderr, w)
		}
	}
	return r
}
