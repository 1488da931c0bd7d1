package controlapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// localRaft is a fake at the Raft seam: a one-member cluster that is always
// its own leader and commits through a LocalApplier, so the control API's
// handlers run in a fuzz loop without consensus.
type localRaft struct {
	*raftstore.LocalApplier
	state *raftstore.State
}

func (r *localRaft) State() *raftstore.State                           { return r.state }
func (r *localRaft) Leader() (string, string)                          { return "m1", "127.0.0.1:1" }
func (r *localRaft) VerifyLeader(context.Context) error                { return nil }
func (r *localRaft) AddVoter(context.Context, string, string) error    { return nil }
func (r *localRaft) AddNonvoter(context.Context, string, string) error { return nil }
func (r *localRaft) DemoteVoter(context.Context, string) error         { return nil }
func (r *localRaft) TransferLeadership(context.Context, string) error  { return nil }
func (r *localRaft) Stats() raftstore.Stats                            { return raftstore.Stats{ID: "m1", State: "leader"} }
func (r *localRaft) Members() ([]raftstore.Member, error) {
	return []raftstore.Member{{ID: "m1", RaftAddr: "127.0.0.1:1", Voter: true}}, nil
}

// fuzzServer is a Server over a fresh state holding a cluster identity,
// services web (2 replicas) and db (depending on web), agentd (global) and
// a node n1.
func fuzzServer(t testing.TB) (*Server, *raftstore.State) {
	st := raftstore.NewState()
	r := &localRaft{LocalApplier: raftstore.NewLocalApplier(st), state: st}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	web := &api.Service{ID: "svc-web", SpecVersion: 1, Spec: api.ServiceSpec{Name: "web", Image: "busybox", Mode: api.ModeReplicated, Replicas: 2}}
	db := &api.Service{ID: "svc-db", SpecVersion: 1, Spec: api.ServiceSpec{Name: "db", Image: "busybox", Mode: api.ModeReplicated, Replicas: 1,
		DependsOn: []api.Dependency{{Service: "web", Condition: api.DependStarted}}}}
	agentd := &api.Service{ID: "svc-agentd", SpecVersion: 1, Spec: api.ServiceSpec{Name: "agentd", Image: "busybox", Mode: api.ModeGlobal}}
	for _, s := range []*api.Service{web, db, agentd} {
		api.ApplyDefaults(&s.Spec)
	}
	for _, cmd := range []raftstore.Command{
		raftstore.SetCluster{Cluster: api.ClusterInfo{ID: "clu", CreatedAt: at}},
		raftstore.UpsertManager{Manager: api.Manager{ID: "m1", RaftAddr: "127.0.0.1:1", Addr: "127.0.0.1:2"}},
		raftstore.CreateService{Service: web}, raftstore.CreateService{Service: db}, raftstore.CreateService{Service: agentd},
		raftstore.UpsertNode{Node: &api.Node{ID: "n1-abc", Hostname: "n1", Status: api.NodeReady,
			Labels: map[string]string{"zone": "a"}, Resources: api.Resources{NanoCPUs: 1e9, MemoryBytes: 1 << 30}}},
	} {
		if _, err := r.Apply(t.Context(), cmd); err != nil {
			t.Fatalf("set up %T: %v", cmd, err)
		}
	}
	s := New(Config{ID: "m1", Raft: r, LeaderTimeout: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { s.Close() })
	return s, st
}

// stateFingerprint sums up everything a request may change.
func stateFingerprint(v *raftstore.View) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%+v|", v.Cluster())
	for _, s := range v.Services() {
		fmt.Fprintf(&b, "%s v%d %+v|", s.ID, s.SpecVersion, s.Spec)
	}
	for _, n := range v.Nodes() {
		fmt.Fprintf(&b, "%s v%d %s %v|", n.ID, n.Version, n.Availability, n.Labels)
	}
	fmt.Fprintf(&b, "%v|%d tasks", v.Managers(), len(v.Tasks()))
	return b.String()
}

// fuzzRequest decodes fuzz bytes as a request of type Req and hands it to
// the server. No input may panic, fail with anything but a request error,
// or be refused after it changed something; an InvalidArgument refusal
// must come before anything is proposed (the index stays). What is
// accepted must leave every service within bounds.
func fuzzRequest[Req proto.Message](f *testing.F, seeds []Req, handle func(context.Context, *Server, Req) error) {
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req Req
		req = req.ProtoReflect().New().Interface().(Req)
		if proto.Unmarshal(data, req) != nil {
			return // gRPC refuses what does not decode before any handler runs
		}
		srv, st := fuzzServer(t)
		before := st.Read()
		err := handle(t.Context(), srv, req)
		after := st.Read()
		switch status.Code(err) {
		case codes.OK:
			checkBounds(t, after)
			return
		case codes.InvalidArgument:
			if after.Index() != before.Index() {
				t.Fatalf("refused with InvalidArgument after proposing (index %d → %d): %v", before.Index(), after.Index(), err)
			}
		case codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition:
		default:
			t.Fatalf("request %v: error code %v, want a request error: %v", req, status.Code(err), err)
		}
		if a, b := stateFingerprint(after), stateFingerprint(before); a != b {
			t.Fatalf("refused request changed the state:\nbefore %s\nafter  %s", b, a)
		}
	})
}

// checkBounds fails if the state holds a service the validation would
// refuse now.
func checkBounds(t *testing.T, v *raftstore.View) {
	t.Helper()
	limit := v.Cluster().Settings.ReplicaLimit()
	for _, s := range v.Services() {
		if err := api.ValidateServiceSpec(&s.Spec); err != nil {
			t.Fatalf("accepted service %s does not validate: %v", s.Spec.Name, err)
		}
		if s.Spec.Mode == api.ModeReplicated && s.Spec.Replicas > limit {
			t.Fatalf("accepted service %s has %d replicas, over the cluster's %d", s.Spec.Name, s.Spec.Replicas, limit)
		}
	}
	for _, n := range v.Nodes() {
		if err := api.ValidateLabels("labels", n.Labels); err != nil {
			t.Fatalf("node %s: %v", n.ID, err)
		}
	}
}

func seedSpec(name string) *shoalpb.ServiceSpec {
	return &shoalpb.ServiceSpec{Name: name, Image: "busybox:1.36", Mode: "replicated", Replicas: 3,
		Env: []string{"A=1"}, Labels: map[string]string{"tier": "web"}, Command: []string{"sh", "-c", "sleep 1"},
		Reservations:  &shoalpb.Resources{NanoCpus: 1e8, MemoryBytes: 64 << 20},
		Placement:     &shoalpb.Placement{Constraints: []string{"node.labels.zone==a"}, Preferences: []string{"spread=node.labels.zone"}, MaxReplicasPerNode: 2},
		RestartPolicy: &shoalpb.RestartPolicy{Condition: "on-failure", Delay: durationpb.New(time.Second), MaxAttempts: 3},
		UpdateConfig:  &shoalpb.UpdateConfig{Parallelism: 2, Delay: durationpb.New(time.Second)},
		Healthcheck:   &shoalpb.Healthcheck{Test: []string{"CMD", "true"}, Interval: durationpb.New(time.Second), Retries: 3},
		Mounts:        []*shoalpb.Mount{{Type: "volume", Source: "data", Target: "/data"}},
		DependsOn:     []*shoalpb.Dependency{{Service: "web"}},
	}
}

func seedSpecs() []*shoalpb.ServiceSpec {
	huge := seedSpec("huge")
	huge.Replicas = math.MaxUint64
	neg := seedSpec("neg")
	neg.Reservations = &shoalpb.Resources{NanoCpus: math.MinInt64, MemoryBytes: -1}
	cycle := seedSpec("web")
	cycle.DependsOn = []*shoalpb.Dependency{{Service: "db"}}
	dur := seedSpec("dur")
	dur.StopGracePeriod = &durationpb.Duration{Seconds: math.MaxInt64, Nanos: -1}
	return []*shoalpb.ServiceSpec{seedSpec("api"), huge, neg, cycle, dur, {}}
}

func FuzzCreateService(f *testing.F) {
	var seeds []*shoalpb.CreateServiceRequest
	for _, s := range seedSpecs() {
		seeds = append(seeds, &shoalpb.CreateServiceRequest{Spec: s}, &shoalpb.CreateServiceRequest{Spec: s, DryRun: true})
	}
	fuzzRequest(f, seeds, func(ctx context.Context, s *Server, req *shoalpb.CreateServiceRequest) error {
		_, err := s.CreateService(ctx, req)
		return err
	})
}

func FuzzUpdateService(f *testing.F) {
	var seeds []*shoalpb.UpdateServiceRequest
	for _, s := range seedSpecs() {
		seeds = append(seeds, &shoalpb.UpdateServiceRequest{Service: "web", Spec: s},
			&shoalpb.UpdateServiceRequest{Service: "db", Spec: s, ExpectedVersion: 1, DryRun: true})
	}
	fuzzRequest(f, seeds, func(ctx context.Context, s *Server, req *shoalpb.UpdateServiceRequest) error {
		_, err := s.UpdateService(ctx, req)
		return err
	})
}

func FuzzScaleService(f *testing.F) {
	seeds := []*shoalpb.ScaleServiceRequest{
		{Service: "web", Replicas: 5}, {Service: "web", Replicas: math.MaxUint64}, {Service: "agentd", Replicas: 1},
		{Service: "svc-w", Replicas: 10_001}, {Service: "db", Replicas: 0, DryRun: true},
	}
	fuzzRequest(f, seeds, func(ctx context.Context, s *Server, req *shoalpb.ScaleServiceRequest) error {
		_, err := s.ScaleService(ctx, req)
		return err
	})
}

func FuzzUpdateNode(f *testing.F) {
	seeds := []*shoalpb.UpdateNodeRequest{
		{Node: "n1", Availability: "drain", LabelAdd: map[string]string{"disk": "ssd"}, LabelRm: []string{"zone"}},
		{Node: "n1-abc", Availability: "asleep"}, {Node: "n", LabelAdd: map[string]string{"": "x"}},
		{Node: "n1", LabelAdd: map[string]string{"k": "v"}, LabelRm: []string{"k"}},
	}
	fuzzRequest(f, seeds, func(ctx context.Context, s *Server, req *shoalpb.UpdateNodeRequest) error {
		_, err := s.UpdateNode(ctx, req)
		return err
	})
}

func FuzzUpdateCluster(f *testing.F) {
	n := func(v uint64) *uint64 { return &v }
	seeds := []*shoalpb.UpdateClusterRequest{{}, {MaxReplicas: n(1)}, {MaxReplicas: n(0)}, {MaxReplicas: n(math.MaxUint64)}, {MaxReplicas: n(100_000)}}
	fuzzRequest(f, seeds, func(ctx context.Context, s *Server, req *shoalpb.UpdateClusterRequest) error {
		_, err := s.UpdateCluster(ctx, req)
		return err
	})
}

func FuzzJoinManager(f *testing.F) {
	seeds := []*shoalpb.JoinManagerRequest{
		{Id: "m2", RaftAddr: "127.0.0.1:7001", Addr: "127.0.0.1:7002", GossipAddr: "127.0.0.1:7003"},
		{Id: "m 2", RaftAddr: "x", Addr: ""}, {Id: "m3", RaftAddr: "[::1]:0", Addr: "host:99999"},
	}
	fuzzRequest(f, seeds, func(ctx context.Context, s *Server, req *shoalpb.JoinManagerRequest) error {
		_, err := s.JoinManager(ctx, req)
		return err
	})
}
