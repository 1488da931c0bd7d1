package stack

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

// seedExample is the compose file of the project's first example, kept
// byte for byte: upper-case service names, a version key, limits and
// reservations, and a chain of depends_on. The lab deploys the same file.
var seedExample = filepath.Join("testdata", "seed-example.yml")

// TestSeedExample: the seed's example converts with no error, its services
// keep their upper-case names, come in dependency order A, B, C, and carry
// their limits, reservations and edges.
func TestSeedExample(t *testing.T) {
	st := mustLoad(t, Options{Name: "demo", Files: []string{seedExample}})
	checkGolden(t, "seed-example", "testdata", st)
	if got, want := serviceNames(st), []string{"demo_A", "demo_B", "demo_C"}; !slices.Equal(got, want) {
		t.Fatalf("services in order %v, want %v", got, want)
	}
	a, b, c := st.Services[0], st.Services[1], st.Services[2]
	for _, s := range st.Services {
		if err := api.ValidateServiceSpec(s); err != nil {
			t.Errorf("%s does not pass the manager's validation: %v", s.Name, err)
		}
		if s.Image != "busybox" {
			t.Errorf("%s image = %q, want busybox", s.Name, s.Image)
		}
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"A limit cpus", a.Resources.Limits.NanoCPUs, int64(500_000_000)},
		{"A limit memory", a.Resources.Limits.MemoryBytes, int64(64 << 20)},
		{"A reserve cpus", a.Resources.Reservations.NanoCPUs, int64(100_000_000)},
		{"A reserve memory", a.Resources.Reservations.MemoryBytes, int64(16 << 20)},
		{"A replicas", a.Replicas, uint64(2)},
		{"A depends on", len(a.DependsOn), 0},
		{"B depends on", b.DependsOn, []api.Dependency{{Service: "demo_A", Condition: api.DependStarted}}},
		{"C depends on", c.DependsOn, []api.Dependency{{Service: "demo_B", Condition: api.DependStarted}}},
		{"C limit cpus", c.Resources.Limits.NanoCPUs, int64(1_000_000_000)},
	}
	for _, ck := range checks {
		if !equalJSON(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.what, ck.got, ck.want)
		}
	}
}
