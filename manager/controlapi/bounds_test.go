package controlapi_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// badCase is one request that must be refused with InvalidArgument, with a
// message holding every one of parts (the field, the value, the limit).
// barrier marks requests checked against the leader's state: those may
// take a read barrier (a Raft entry the FSM never sees), so only the
// state's index is compared for them, not the log's.
type badCase struct {
	name    string
	call    func(ctx context.Context, cl shoalpb.ControlClient) error
	parts   []string
	barrier bool
}

// boundsCluster is one real manager holding what the cases refer to:
// services web (0 replicas), db (0 replicas, depends on web), big (50
// replicas, all pending: there is no node to run them) and agentd (global),
// and a node n1 with 200 labels. It returns once the orchestrator has
// nothing left to write.
func boundsCluster(t *testing.T) *managertest.Cluster {
	c := managertest.StartCluster(t, 1, managertest.Options{Edit: func(cfg *manager.Config) {
		cfg.NodeGracePeriod = time.Hour // n1 has no agent
	}})
	cl := c.Client(0)
	ctx := t.Context()
	labels := map[string]string{}
	for i := range 200 {
		labels[fmt.Sprintf("l%03d", i)] = "v"
	}
	apply(t, c, raftstore.UpsertNode{Node: &api.Node{ID: "n1-abcdef", Hostname: "n1", Role: api.RoleWorker,
		Availability: api.AvailabilityDrain, Status: api.NodeReady, Labels: labels,
		Resources: api.Resources{NanoCPUs: 1e9, MemoryBytes: 1 << 30}}})
	web := validSpec("web")
	web.Replicas = 0
	db := validSpec("db")
	db.Replicas = 0
	db.DependsOn = []*shoalpb.Dependency{{Service: "web"}}
	big := validSpec("big")
	big.Replicas = 50
	global := validSpec("agentd")
	global.Mode, global.Replicas = "global", 0
	for _, s := range []*shoalpb.ServiceSpec{web, db, big, global} {
		if _, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: s}); err != nil {
			t.Fatalf("create %s: %v", s.GetName(), err)
		}
	}
	c.WaitFor(waitTimeout, func() error {
		tasks, err := cl.ListTasks(ctx, &shoalpb.ListTasksRequest{Service: "big"})
		if err != nil {
			return err
		}
		pending := 0
		for _, task := range tasks.GetTasks() {
			if task.GetStatus().GetState() == "pending" && task.GetStatus().GetPendingReason() != "" {
				pending++
			}
		}
		if pending != 50 {
			return fmt.Errorf("%d of big's 50 tasks pending with a reason", pending)
		}
		return nil
	})
	return c
}

func validSpec(name string) *shoalpb.ServiceSpec {
	return &shoalpb.ServiceSpec{Name: name, Image: "busybox:1.36", Mode: "replicated", Replicas: 1}
}

// TestBadRequestsAreRefusedAndChangeNothing sends every bad request of the
// table through gRPC to a real manager: each gets InvalidArgument naming
// the field, the value and the limit, and the state does not move.
func TestBadRequestsAreRefusedAndChangeNothing(t *testing.T) {
	c := boundsCluster(t)
	cl := c.Client(0)
	// A join comes from a manager: an operator's is refused before it is
	// read.
	joiner := c.ClientWith(0, c.Credentials(pki.RoleManager))
	node := c.Manager(0).Raft()
	cases := append(specCases(), requestCases()...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := cl
			if strings.HasPrefix(tc.name, "join") {
				cl = joiner
			}
			state, log, fp := node.State().Read().Index(), node.Stats().LastIndex, boundsFingerprint(t, c)
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()
			wantCode(t, tc.call(ctx, cl), codes.InvalidArgument, tc.parts...)
			if got := node.State().Read().Index(); got != state {
				t.Fatalf("state index moved from %d to %d on a refused request", state, got)
			}
			if got := node.Stats().LastIndex; !tc.barrier && got != log {
				t.Fatalf("raft index moved from %d to %d: the request reached the log", log, got)
			}
			if got := boundsFingerprint(t, c); got != fp {
				t.Fatalf("state changed:\nfrom %s\nto   %s", fp, got)
			}
		})
	}
	// The manager is alive and its orchestrator still works.
	if _, err := cl.ScaleService(t.Context(), &shoalpb.ScaleServiceRequest{Service: "web", Replicas: 2}); err != nil {
		t.Fatalf("scale after the bad requests: %v", err)
	}
	waitTasks(t, c, "web", 2)
}

// boundsFingerprint sums up what a request could change: services with
// their versions and specs, nodes with their versions, the cluster's
// settings, the managers and the number of tasks.
func boundsFingerprint(t *testing.T, c *managertest.Cluster) string {
	t.Helper()
	v := c.Manager(0).Raft().State().Read()
	var b strings.Builder
	fmt.Fprintf(&b, "cluster %+v; ", v.Cluster().Settings)
	for _, s := range v.Services() {
		fmt.Fprintf(&b, "service %s v%d r%d deps %v; ", s.Spec.Name, s.SpecVersion, s.Spec.Replicas, s.Spec.DependsOn)
	}
	for _, n := range v.Nodes() {
		fmt.Fprintf(&b, "node %s v%d %s %d labels; ", n.ID, n.Version, n.Availability, len(n.Labels))
	}
	fmt.Fprintf(&b, "managers %v; tasks %d", v.Managers(), len(v.Tasks()))
	return b.String()
}

// waitTasks waits until service has n tasks desired running.
func waitTasks(t *testing.T, c *managertest.Cluster, service string, n int) {
	t.Helper()
	c.WaitFor(waitTimeout, func() error {
		v := c.Manager(c.WaitLeader(waitTimeout)).Raft().State().Read()
		svc := v.ServiceByName(service)
		if svc == nil {
			return fmt.Errorf("no service %s", service)
		}
		got := 0
		for _, task := range v.TasksByService(svc.ID) {
			if task.DesiredState == api.TaskRunning {
				got++
			}
		}
		if got != n {
			return fmt.Errorf("%s has %d tasks desired running, want %d", service, got, n)
		}
		return nil
	})
}

// TestScaleToMaxUint64 is the report that started this: scaling to
// 18446744073709551615 was accepted and the orchestrator of every leader
// that replayed it panicked. It is refused, naming the field, the value
// and the limit; the manager goes on serving and orchestrating.
func TestScaleToMaxUint64(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	cl := c.Client(0)
	ctx := t.Context()
	if _, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: validSpec("big")}); err != nil {
		t.Fatal(err)
	}
	waitTasks(t, c, "big", 1)
	for _, n := range []uint64{math.MaxUint64, math.MaxInt64 + 1, api.MaxReplicasCeiling + 1, api.DefaultMaxReplicas + 1} {
		_, err := cl.ScaleService(ctx, &shoalpb.ScaleServiceRequest{Service: "big", Replicas: n})
		wantCode(t, err, codes.InvalidArgument, "replicas", fmt.Sprint(n))
		_, err = cl.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: "big", Spec: func() *shoalpb.ServiceSpec {
			s := validSpec("big")
			s.Replicas = n
			return s
		}()})
		wantCode(t, err, codes.InvalidArgument, "spec.replicas", fmt.Sprint(n))
	}
	if _, err := cl.ScaleService(ctx, &shoalpb.ScaleServiceRequest{Service: "big", Replicas: 3}); err != nil {
		t.Fatalf("scale to 3 after the refusals: %v", err)
	}
	waitTasks(t, c, "big", 3)
	got, err := cl.GetService(ctx, &shoalpb.GetServiceRequest{Service: "big"})
	if err != nil || got.GetSpec().GetReplicas() != 3 {
		t.Fatalf("big = %v, %v; want 3 replicas", got, err)
	}
}

// TestMaxReplicasSetting raises and lowers the cluster's max-replicas
// through the API: scale is held to it, and it cannot go below a service.
func TestMaxReplicasSetting(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	cl := c.Client(0)
	ctx := t.Context()
	st, err := cl.ClusterStatus(ctx, &shoalpb.ClusterStatusRequest{})
	if err != nil || st.GetSettings().GetMaxReplicas() != api.DefaultMaxReplicas {
		t.Fatalf("status settings = %v, %v; want the default max-replicas %d", st.GetSettings(), err, api.DefaultMaxReplicas)
	}
	web := validSpec("web")
	web.Replicas = 4
	if _, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: web}); err != nil {
		t.Fatal(err)
	}
	set := func(n uint64) (*shoalpb.UpdateClusterResponse, error) {
		return cl.UpdateCluster(ctx, &shoalpb.UpdateClusterRequest{MaxReplicas: &n})
	}
	_, err = set(3)
	wantCode(t, err, codes.InvalidArgument, "max_replicas", `"web" has 4 replicas`)
	resp, err := set(5)
	if err != nil || resp.GetSettings().GetMaxReplicas() != 5 {
		t.Fatalf("set max-replicas 5: %v, %v", resp, err)
	}
	_, err = cl.ScaleService(ctx, &shoalpb.ScaleServiceRequest{Service: "web", Replicas: 6})
	wantCode(t, err, codes.InvalidArgument, "replicas", `"6"`, "max-replicas, 5")
	over := validSpec("other")
	over.Replicas = 6
	_, err = cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: over})
	wantCode(t, err, codes.InvalidArgument, "spec.replicas", `"6"`, "max-replicas, 5")
	if _, err := cl.ScaleService(ctx, &shoalpb.ScaleServiceRequest{Service: "web", Replicas: 5}); err != nil {
		t.Fatalf("scale to the limit: %v", err)
	}
	if resp, err := set(0); err != nil || resp.GetSettings().GetMaxReplicas() != api.DefaultMaxReplicas {
		t.Fatalf("reset max-replicas: %v, %v; want the default", resp, err)
	}
	// The setting is in Raft: the state says so.
	if got := c.Manager(0).Raft().State().Read().Cluster().Settings.ReplicaLimit(); got != api.DefaultMaxReplicas {
		t.Fatalf("state's limit = %d", got)
	}
}
