package controlapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

const waitTimeout = 20 * time.Second

func spec(name string) *shoalpb.ServiceSpec {
	return &shoalpb.ServiceSpec{Name: name, Image: "busybox:latest", Mode: "replicated", Replicas: 2}
}

// cluster starts three managers and returns them with the index of a
// follower, through which the tests talk (so every write is forwarded).
func cluster(t *testing.T) (*managertest.Cluster, int) {
	c := managertest.StartCluster(t, 3, managertest.Options{Edit: func(cfg *manager.Config) {
		// The nodes these tests register have no agent: keep the
		// dispatcher from declaring them down while the test runs.
		cfg.NodeGracePeriod = time.Hour
	}})
	return c, (c.WaitLeader(waitTimeout) + 1) % 3
}

// apply commits a command on the leader, as the dispatcher or an
// orchestrator would, to set up nodes and tasks.
func apply(t testing.TB, c *managertest.Cluster, cmd raftstore.Command) raftstore.Response {
	t.Helper()
	resp, err := c.Manager(c.WaitLeader(waitTimeout)).Raft().Apply(t.Context(), cmd)
	if err != nil {
		t.Fatalf("apply %T: %v", cmd, err)
	}
	return resp
}

func lastIndex(t *testing.T, c *managertest.Cluster) uint64 {
	t.Helper()
	return c.Manager(c.WaitLeader(waitTimeout)).Raft().Stats().LastIndex
}

// fingerprint sums up the leader's services and nodes with their versions.
func fingerprint(t *testing.T, c *managertest.Cluster) string {
	t.Helper()
	v := c.Manager(c.WaitLeader(waitTimeout)).Raft().State().Read()
	var b strings.Builder
	for _, s := range v.Services() {
		fmt.Fprintf(&b, "service %s %s v%d r%d; ", s.ID, s.Spec.Name, s.SpecVersion, s.Spec.Replicas)
	}
	for _, n := range v.Nodes() {
		fmt.Fprintf(&b, "node %s v%d; ", n.ID, n.Version)
	}
	return b.String()
}

func wantCode(t *testing.T, err error, code codes.Code, parts ...string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("err = %v, want %v", err, code)
	}
	msg := status.Convert(err).Message()
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Fatalf("message %q does not contain %q", msg, p)
		}
	}
}

func TestRejectedWritesChangeNothing(t *testing.T) {
	c, f := cluster(t)
	cl := c.Client(f)
	ctx := t.Context()
	// No replicas and no nodes: the orchestrator has nothing to write, so
	// any index move below would come from the rejected requests.
	idle := spec("web")
	idle.Replicas = 0
	web, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: idle})
	if err != nil {
		t.Fatal(err)
	}
	global := spec("agentd")
	global.Mode, global.Replicas = "global", 0
	if _, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: global}); err != nil {
		t.Fatal(err)
	}
	// Requests that fail validation never reach Raft: the index stays.
	// The others may be refused by the FSM or follow a read barrier,
	// which take log entries, but leave the state as it was.
	for _, tt := range invalidRequests(ctx, cl) {
		t.Run(tt.name, func(t *testing.T) {
			before, state := lastIndex(t, c), fingerprint(t, c)
			wantCode(t, tt.call(), tt.code, tt.parts...)
			if after := lastIndex(t, c); after != before {
				t.Fatalf("raft index moved from %d to %d on an invalid request", before, after)
			}
			if got := fingerprint(t, c); got != state {
				t.Fatalf("state changed from %s to %s", state, got)
			}
		})
	}
	for _, tt := range refusedRequests(ctx, cl, web.GetService().GetSpecVersion()) {
		t.Run(tt.name, func(t *testing.T) {
			state := fingerprint(t, c)
			wantCode(t, tt.call(), tt.code, tt.parts...)
			if got := fingerprint(t, c); got != state {
				t.Fatalf("state changed from %s to %s", state, got)
			}
		})
	}
	got, err := cl.GetService(ctx, &shoalpb.GetServiceRequest{Service: web.GetService().GetId()[:6]})
	if err != nil || got.GetSpecVersion() != web.GetService().GetSpecVersion() {
		t.Fatalf("web by id prefix after the rejected requests: %v, %v", got, err)
	}
}

// check is one request expected to fail with code and a message holding
// every one of parts.
type check struct {
	name  string
	call  func() error
	code  codes.Code
	parts []string
}

// invalidRequests fail validation before anything is proposed.
func invalidRequests(ctx context.Context, cl shoalpb.ControlClient) []check {
	badName := spec("Web Server")
	negMem := spec("mem")
	negMem.Reservations = &shoalpb.Resources{MemoryBytes: -1}
	return []check{
		{"bad name", func() error {
			_, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: badName})
			return err
		}, codes.InvalidArgument, []string{`spec.name "Web Server"`}},
		{"negative memory", func() error {
			_, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: negMem})
			return err
		}, codes.InvalidArgument, []string{`spec.resources.reservations.memory_bytes "-1"`}},
		{"no spec", func() error {
			_, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{})
			return err
		}, codes.InvalidArgument, []string{"spec: missing"}},
		{"bad availability", func() error {
			_, err := cl.UpdateNode(ctx, &shoalpb.UpdateNodeRequest{Node: "nosuch", Availability: "asleep"})
			return err
		}, codes.InvalidArgument, []string{`availability "asleep"`}},
		{"bad filter", func() error {
			s, err := cl.Events(ctx, &shoalpb.EventsRequest{Filters: []string{"colour=red"}})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}, codes.InvalidArgument, []string{`"colour=red"`}},
	}
}

// refusedRequests are refused by the leader (lookups, conflicts), given
// services web (at specVersion) and agentd (global).
func refusedRequests(ctx context.Context, cl shoalpb.ControlClient, specVersion uint64) []check {
	renamed := spec("other")
	return []check{
		{"duplicate name", func() error {
			_, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: spec("web")})
			return err
		}, codes.AlreadyExists, []string{"web"}},
		{"update unknown", func() error {
			_, err := cl.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: "nosuch", Spec: spec("nosuch")})
			return err
		}, codes.NotFound, []string{`service "nosuch"`}},
		{"update rename", func() error {
			_, err := cl.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: "web", Spec: renamed})
			return err
		}, codes.InvalidArgument, []string{`spec.name "other"`, "web"}},
		{"update old version", func() error {
			_, err := cl.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: "web", Spec: spec("web"),
				ExpectedVersion: specVersion + 5})
			return err
		}, codes.FailedPrecondition, nil},
		{"scale unknown", func() error {
			_, err := cl.ScaleService(ctx, &shoalpb.ScaleServiceRequest{Service: "nosuch", Replicas: 3})
			return err
		}, codes.NotFound, []string{`"nosuch"`}},
		{"scale global", func() error {
			_, err := cl.ScaleService(ctx, &shoalpb.ScaleServiceRequest{Service: "agentd", Replicas: 3})
			return err
		}, codes.InvalidArgument, []string{`"agentd" is global`}},
		{"remove unknown", func() error {
			_, err := cl.RemoveService(ctx, &shoalpb.RemoveServiceRequest{Service: "nosuch"})
			return err
		}, codes.NotFound, []string{`"nosuch"`}},
		{"get unknown", func() error {
			_, err := cl.GetService(ctx, &shoalpb.GetServiceRequest{Service: "nosuch"})
			return err
		}, codes.NotFound, []string{`"nosuch"`}},
		{"update unknown node", func() error {
			_, err := cl.UpdateNode(ctx, &shoalpb.UpdateNodeRequest{Node: "nosuch", Availability: "drain"})
			return err
		}, codes.NotFound, []string{`node "nosuch"`}},
	}
}

func TestServiceLifecycleThroughFollower(t *testing.T) {
	c, f := cluster(t)
	cl := c.Client(f)
	ctx := t.Context()
	created, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: spec("web")})
	if err != nil {
		t.Fatal(err)
	}
	if created.GetService().GetSpec().GetRestartPolicy().GetCondition() != "any" {
		t.Fatalf("defaults not applied: %v", created.GetService().GetSpec())
	}
	scaled, err := cl.ScaleService(ctx, &shoalpb.ScaleServiceRequest{Service: "web", Replicas: 4})
	if err != nil {
		t.Fatal(err)
	}
	if scaled.GetService().GetSpec().GetReplicas() != 4 || scaled.GetService().GetSpecVersion() <= created.GetService().GetSpecVersion() {
		t.Fatalf("scaled = %v", scaled.GetService())
	}
	upd := spec("web")
	upd.Image = "busybox:1.36"
	updated, err := cl.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: "web", Spec: upd,
		ExpectedVersion: scaled.GetService().GetSpecVersion()})
	if err != nil {
		t.Fatal(err)
	}
	if updated.GetService().GetSpec().GetImage() != "busybox:1.36" || updated.GetService().GetPreviousSpec().GetImage() != "busybox:latest" {
		t.Fatalf("updated = %v", updated.GetService())
	}
	list, err := cl.ListServices(ctx, &shoalpb.ListServicesRequest{})
	if err != nil || len(list.GetServices()) != 1 || list.GetServices()[0].GetDesired() != 2 {
		t.Fatalf("list = %v, %v; want web with 2 desired", list, err)
	}
	if _, err := cl.RemoveService(ctx, &shoalpb.RemoveServiceRequest{Service: "web"}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.GetService(ctx, &shoalpb.GetServiceRequest{Service: "web"})
	wantCode(t, err, codes.NotFound, `"web"`)
}

func TestDryRunPlansWithoutChanging(t *testing.T) {
	c, f := cluster(t)
	cl := c.Client(f)
	ctx := t.Context()
	apply(t, c, raftstore.UpsertNode{Node: &api.Node{ID: "node-a", Hostname: "a", Role: api.RoleWorker,
		Availability: api.AvailabilityActive, Status: api.NodeReady,
		Resources: api.Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30}}})
	big := spec("big")
	big.Reservations = &shoalpb.Resources{MemoryBytes: 6 << 30}
	before := fingerprint(t, c)
	resp, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: big, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if after := fingerprint(t, c); after != before || resp.GetIndex() != 0 {
		t.Fatalf("dry run changed the state from %s to %s (answer index %d)", before, after, resp.GetIndex())
	}
	p := resp.GetPlan()
	if p.GetAction() != "create" || !hasChange(p, "image", "", "busybox:latest") {
		t.Fatalf("plan = %v", p)
	}
	// 8 GiB take one 6 GiB replica; the second fits nowhere.
	if len(p.GetTasks()) != 2 || p.GetTasks()[0].GetHostname() != "a" || p.GetTasks()[1].GetReason() == "" {
		t.Fatalf("planned tasks = %v; want slot 1 on a, slot 2 with a reason", p.GetTasks())
	}
	_, err = cl.GetService(ctx, &shoalpb.GetServiceRequest{Service: "big"})
	wantCode(t, err, codes.NotFound)

	if _, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: spec("web")}); err != nil {
		t.Fatal(err)
	}
	scale, err := cl.ScaleService(ctx, &shoalpb.ScaleServiceRequest{Service: "web", Replicas: 3, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if sp := scale.GetPlan(); sp.GetAction() != "update" || len(sp.GetChanges()) != 1 || !hasChange(sp, "replicas", "2", "3") {
		t.Fatalf("scale plan = %v", sp)
	}
	newImage := spec("web")
	newImage.Image = "busybox:1.36"
	upd, err := cl.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: "web", Spec: newImage, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	// A new image replaces both tasks; both fit on a (no reservations).
	up := upd.GetPlan()
	if up.GetAction() != "update" || !hasChange(up, "image", "busybox:latest", "busybox:1.36") || len(up.GetTasks()) != 2 {
		t.Fatalf("update plan = %v", up)
	}
	for _, pt := range up.GetTasks() {
		if pt.GetAction() != "start" || pt.GetHostname() != "a" {
			t.Errorf("planned task %v; want started on a", pt)
		}
	}
	got, err := cl.GetService(ctx, &shoalpb.GetServiceRequest{Service: "web"})
	if err != nil || got.GetSpec().GetReplicas() != 2 || got.GetSpec().GetImage() != "busybox:latest" {
		t.Fatalf("web after dry runs: %v, %v; want 2 replicas of busybox:latest", got, err)
	}
}

func hasChange(p *shoalpb.Plan, field, old, new string) bool {
	for _, c := range p.GetChanges() {
		if c.GetField() == field && c.GetOld() == old && c.GetNew() == new {
			return true
		}
	}
	return false
}

func TestNodes(t *testing.T) {
	c, f := cluster(t)
	cl := c.Client(f)
	ctx := t.Context()
	placed := placeOneTask(t, c, cl)
	n, err := cl.GetNode(ctx, &shoalpb.GetNodeRequest{Node: "beta"})
	if err != nil || n.GetId() != "n2-abcdef" {
		t.Fatalf("node by hostname: %v, %v", n, err)
	}
	_, err = cl.GetNode(ctx, &shoalpb.GetNodeRequest{Node: "n"})
	wantCode(t, err, codes.InvalidArgument, "ambiguous", "alpha", "beta")

	list, err := cl.ListNodes(ctx, &shoalpb.ListNodesRequest{})
	if err != nil || len(list.GetNodes()) != 2 {
		t.Fatalf("list nodes: %v, %v", list, err)
	}
	for _, ns := range list.GetNodes() {
		var want uint64
		if ns.GetNode().GetId() == placed.GetNodeId() {
			want = 1
		}
		if ns.GetTasks() != want || ns.GetReserved().GetMemoryBytes() != int64(want)<<30 {
			t.Errorf("node %s: %d tasks reserving %d bytes; want %d task(s) of 1 GiB",
				ns.GetNode().GetHostname(), ns.GetTasks(), ns.GetReserved().GetMemoryBytes(), want)
		}
	}
	host := map[string]string{"n1-abcdef": "alpha", "n2-abcdef": "beta"}[placed.GetNodeId()]
	tasks, err := cl.ListTasks(ctx, &shoalpb.ListTasksRequest{Service: "web", Node: host})
	if err != nil || len(tasks.GetTasks()) != 1 {
		t.Fatalf("tasks of web on %s: %v, %v", host, tasks, err)
	}
	// The store keeps a task's spec apart; the API answers with it.
	if spec := tasks.GetTasks()[0].GetSpec(); spec.GetImage() != "busybox" || spec.GetReservations().GetMemoryBytes() != 1<<30 {
		t.Errorf("listed task's spec = %v, want web's (busybox, 1 GiB reserved)", spec)
	}

	upd, err := cl.UpdateNode(ctx, &shoalpb.UpdateNodeRequest{Node: "n2", Availability: "drain",
		LabelAdd: map[string]string{"zone": "b"}})
	if err != nil || upd.GetAvailability() != "drain" || upd.GetLabels()["zone"] != "b" {
		t.Fatalf("update node: %v, %v", upd, err)
	}
	_, err = cl.RemoveNode(ctx, &shoalpb.RemoveNodeRequest{Node: "beta"})
	wantCode(t, err, codes.FailedPrecondition, "beta", "ready", "--force")
	apply(t, c, raftstore.SetNodeStatus{ID: "n2-abcdef", Status: api.NodeDown, Message: "test", At: time.Now().UTC()})
	if _, err := cl.RemoveNode(ctx, &shoalpb.RemoveNodeRequest{Node: "beta"}); err != nil {
		t.Fatalf("remove a down node: %v", err)
	}
	if _, err := cl.RemoveNode(ctx, &shoalpb.RemoveNodeRequest{Node: "alpha", Force: true}); err != nil {
		t.Fatalf("force-remove a ready node: %v", err)
	}
	list, err = cl.ListNodes(ctx, &shoalpb.ListNodesRequest{})
	if err != nil || len(list.GetNodes()) != 0 {
		t.Fatalf("nodes after removal: %v, %v", list, err)
	}
}

// placeOneTask registers nodes alpha and beta, creates web with one
// replica and returns its task once the orchestrator has made it and the
// scheduler has assigned it.
func placeOneTask(t *testing.T, c *managertest.Cluster, cl shoalpb.ControlClient) *shoalpb.Task {
	t.Helper()
	for _, n := range []*api.Node{
		{ID: "n1-abcdef", Hostname: "alpha", Role: api.RoleWorker, Availability: api.AvailabilityActive, Status: api.NodeReady,
			Resources: api.Resources{NanoCPUs: 2e9, MemoryBytes: 4 << 30}},
		{ID: "n2-abcdef", Hostname: "beta", Role: api.RoleWorker, Availability: api.AvailabilityActive, Status: api.NodeReady,
			Resources: api.Resources{NanoCPUs: 2e9, MemoryBytes: 4 << 30}},
	} {
		apply(t, c, raftstore.UpsertNode{Node: n})
	}
	svc, err := cl.CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
		Name: "web", Image: "busybox", Mode: "replicated", Replicas: 1,
		Reservations: &shoalpb.Resources{NanoCpus: 5e8, MemoryBytes: 1 << 30}}})
	if err != nil {
		t.Fatal(err)
	}
	var placed *shoalpb.Task
	c.WaitFor(waitTimeout, func() error {
		tasks, err := cl.ListTasks(t.Context(), &shoalpb.ListTasksRequest{Service: svc.GetService().GetId()})
		if err != nil {
			return err
		}
		for _, task := range tasks.GetTasks() {
			if task.GetNodeId() != "" && task.GetStatus().GetState() == "assigned" {
				placed = task
				return nil
			}
		}
		return fmt.Errorf("web has no assigned task yet: %v", tasks.GetTasks())
	})
	return placed
}

func TestEventsClusterStatusAndSocket(t *testing.T) {
	c, f := cluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	stream, err := c.Client(f).Events(ctx, &shoalpb.EventsRequest{Filters: []string{"type=service", "service=web"}})
	if err != nil {
		t.Fatal(err)
	}
	// The stream is established once the server has sent headers.
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	sock := c.SocketClient(f)
	for _, name := range []string{"db", "web"} {
		if _, err := sock.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: spec(name)}); err != nil {
			t.Fatalf("create %s over the unix socket: %v", name, err)
		}
	}
	ev, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if ev.GetType() != "service" || ev.GetAction() != "create" || ev.GetName() != "web" || ev.GetTime() == nil {
		t.Fatalf("first filtered event = %v; want web's create", ev)
	}

	leader := c.WaitLeader(waitTimeout)
	st, err := c.Client(f).ClusterStatus(ctx, &shoalpb.ClusterStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	lm := c.Manager(leader)
	if st.GetAnsweredBy() != lm.ID() || st.GetLeaderId() != lm.ID() || st.GetLeaderAddr() != lm.Addr() || st.GetClusterId() == "" {
		t.Fatalf("status = %v; want the leader's answer (%s at %s)", st, lm.ID(), lm.Addr())
	}
	if len(st.GetManagers()) != 3 {
		t.Fatalf("status lists %d managers, want 3", len(st.GetManagers()))
	}
	for _, m := range st.GetManagers() {
		if !m.GetReachable() || !m.GetVoter() || m.GetAddr() == "" || m.GetRaftAddr() == "" {
			t.Errorf("manager %v: want a reachable voter with addresses", m)
		}
	}
	stale, err := c.Client(f).ClusterStatus(ctx, &shoalpb.ClusterStatusRequest{Stale: true})
	if err != nil || stale.GetAnsweredBy() != c.Manager(f).ID() {
		t.Fatalf("stale status answered by %q (%v), want %s", stale.GetAnsweredBy(), err, c.Manager(f).ID())
	}

	logs, err := sock.ServiceLogs(ctx, &shoalpb.ServiceLogsRequest{Service: "nope"})
	if err == nil {
		_, err = logs.Recv()
	}
	wantCode(t, err, codes.NotFound, `service "nope"`)
}
