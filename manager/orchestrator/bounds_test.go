package orchestrator

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// TestReplicasBeyondTheClusterLimit: a service whose count is over the
// cluster's max-replicas (the FSM only refuses counts over the ceiling, so
// a command that went around the control API can write one) runs the
// cluster's max-replicas, in slots 1..max.
func TestReplicasBeyondTheClusterLimit(t *testing.T) {
	h := newHarness(t)
	h.do(raftstore.SetCluster{Cluster: api.ClusterInfo{ID: "clu"}})
	h.do(raftstore.SetCluster{Cluster: api.ClusterInfo{ID: "clu"}, Settings: &api.ClusterSettings{MaxReplicas: 5}})
	h.addNode("n1", nil)
	svc := h.createService(replicated("web", 12))
	h.waitFor("5 tasks", func(v *raftstore.View) string {
		if n := len(live(v, svc.ID)); n != 5 {
			return "live tasks: " + strconv.Itoa(n)
		}
		return ""
	})
	h.barrier()
	v := h.state.Read()
	got := slotsOf(live(v, svc.ID))
	if len(got) != 5 || got[0] != 1 || got[4] != 5 {
		t.Fatalf("slots %v; want 1..5\n%s", got, dump(v))
	}
}

// TestPassOverOutOfBoundsState runs a pass over a state holding every
// count at its extreme, as a state written by an older version could: no
// panic, no conversion that wraps, and no more slots than the cluster's
// max-replicas.
func TestPassOverOutOfBoundsState(t *testing.T) {
	st := raftstore.NewState()
	a := raftstore.NewLocalApplier(st)
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	web := &api.Service{ID: "svc-web", Spec: replicated("web", 2)}
	db := &api.Service{ID: "svc-db", Spec: replicated("db", 1)}
	db.Spec.DependsOn = []api.Dependency{{Service: "web", Condition: api.DependStarted}}
	for _, cmd := range []raftstore.Command{
		raftstore.UpsertNode{Node: &api.Node{ID: "n1", Hostname: "n1", Status: api.NodeReady,
			Resources: api.Resources{NanoCPUs: math.MaxInt64, MemoryBytes: math.MaxInt64}}},
		raftstore.CreateService{Service: web}, raftstore.CreateService{Service: db},
	} {
		if _, err := a.Apply(t.Context(), cmd); err != nil {
			t.Fatal(err)
		}
	}
	p := newPass(st.Read(), at, testLogger(t))
	// What no request can write any more, put in place of the stored
	// service for this pass (stored values are shared: a clone).
	odd := p.svcByID["svc-web"].Clone()
	odd.Spec.Replicas = math.MaxUint64
	odd.Spec.UpdateConfig.Parallelism = math.MaxUint64
	odd.Spec.RestartPolicy = api.RestartPolicy{Condition: api.RestartAny, MaxAttempts: math.MaxUint64,
		Delay: api.Duration(math.MaxInt64), Window: api.Duration(math.MinInt64)}
	odd.Spec.Resources.Reservations = api.Resources{NanoCPUs: math.MaxInt64, MemoryBytes: math.MaxInt64}
	odd.Spec.Placement.MaxReplicasPerNode = math.MaxUint64
	for i, s := range p.services {
		if s.ID == odd.ID {
			p.services[i] = odd
		}
	}
	p.svcByID[odd.ID], p.svcByName[odd.Spec.Name] = odd, odd
	// Tasks read their spec by version: the odd spec is the one they get.
	p.specs[specKey{odd.ID, odd.SpecVersion}] = &odd.Spec
	for _, svc := range p.services {
		p.reconcileReplicated(svc, p.bySvc[svc.ID])
	}
	p.reap()
	var loads nodeLoads
	loads.rebuild(p.index, p.all, p.specOf)
	p.schedule(map[string]uint64{}, loads.planned(p))
	created := 0
	for _, task := range p.plan.creates {
		if task.ServiceID == odd.ID {
			created++
		}
	}
	if created != api.DefaultMaxReplicas {
		t.Fatalf("created %d tasks for a service asking %d; want the cluster's max-replicas, %d", created, odd.Spec.Replicas, api.DefaultMaxReplicas)
	}
	// A node with the most resources takes one task reserving the most:
	// the sum saturates instead of wrapping around to room for more.
	ofOdd := map[string]bool{}
	for _, task := range p.plan.creates {
		ofOdd[task.ID] = task.ServiceID == odd.ID
	}
	placed := 0
	for _, as := range p.plan.assigns {
		if ofOdd[as.TaskID] {
			placed++
		}
	}
	if placed != 1 {
		t.Fatalf("%d tasks reserving the most placed on a node whose room fits one", placed)
	}
}

func TestBoundedArithmetic(t *testing.T) {
	if got := api.UpdateBudget(math.MaxUint64, 3, 1); got != 3 {
		t.Errorf("api.UpdateBudget(max, 3, 1) = %d, want 3", got)
	}
	if got := api.UpdateBudget(2, 5, 1); got != 1 {
		t.Errorf("api.UpdateBudget(2, 5, 1) = %d, want 1", got)
	}
	if got := api.UpdateBudget(1, 5, 3); got != 0 {
		t.Errorf("api.UpdateBudget(1, 5, 3) = %d, want 0", got)
	}
	svc := &api.Service{Spec: api.ServiceSpec{RestartPolicy: api.RestartPolicy{MaxAttempts: math.MaxUint64}}}
	if got := historyLimit(svc); got != api.MaxRestartAttempts {
		t.Errorf("historyLimit(max attempts) = %d, want %d", got, api.MaxRestartAttempts)
	}
	for _, k := range []int{1, 2, 10, 64, math.MaxInt32} {
		if d := backoff(time.Duration(math.MaxInt64), k); d <= 0 || d > 10*api.MaxDuration.Std() {
			t.Errorf("backoff(max, %d) = %s; want positive and at most 10 × %s", k, d, api.MaxDuration.Std())
		}
	}
}
