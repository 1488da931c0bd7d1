package controlapi

import (
	"errors"
	"fmt"
	"testing"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// TestDependencyGraphWalksFromSpec: the graph a write is checked against
// holds what its depends_on reaches (and only that), so a cycle anywhere
// along that path is still found.
func TestDependencyGraphWalksFromSpec(t *testing.T) {
	s := raftstore.NewState()
	apply := raftstore.NewLocalApplier(s)
	for _, svc := range []struct{ name, dep string }{{"c", ""}, {"b", "c"}, {"a", "b"}, {"x", "a"}} {
		spec := api.ServiceSpec{Name: svc.name, Image: "busybox", Mode: api.ModeReplicated, Replicas: 1}
		if svc.dep != "" {
			spec.DependsOn = []api.Dependency{{Service: svc.dep}}
		}
		if _, err := apply.Apply(t.Context(), raftstore.CreateService{Service: &api.Service{ID: "id-" + svc.name, Spec: spec}}); err != nil {
			t.Fatal(err)
		}
	}
	v := s.Read()
	spec := &api.ServiceSpec{Name: "c", DependsOn: []api.Dependency{{Service: "a"}, {Service: "missing"}}}
	got := dependencyGraph(v, spec)
	if want := "map[a:[b] b:[c] c:[]]"; fmt.Sprint(got) != want {
		t.Errorf("graph %v, want %s (x is not reachable, missing does not exist)", got, want)
	}
	spec.DependsOn = spec.DependsOn[:1]
	err := api.ValidateDependencyGraph(spec, nil, got)
	if !errors.Is(err, api.ErrDependencyCycle) {
		t.Fatalf("c depending on a: %v, want the cycle c -> a -> b -> c", err)
	}
	if err := api.ValidateDependencyGraph(&api.ServiceSpec{Name: "y", DependsOn: []api.Dependency{{Service: "x"}}}, nil,
		dependencyGraph(v, &api.ServiceSpec{Name: "y", DependsOn: []api.Dependency{{Service: "x"}}})); err != nil {
		t.Errorf("y depending on x: %v, want no error", err)
	}
}
