package api

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestDependencyOrder(t *testing.T) {
	tests := []struct {
		name string
		deps map[string][]string
		want []string
		err  string
	}{
		{"empty", map[string][]string{}, nil, ""},
		{"independent sort by name", map[string][]string{"b": nil, "a": nil, "c": nil}, []string{"a", "b", "c"}, ""},
		{"chain", map[string][]string{"c": {"b"}, "b": {"a"}, "a": nil}, []string{"a", "b", "c"}, ""},
		{"diamond", map[string][]string{"top": {"r", "l"}, "l": {"base"}, "r": {"base"}, "base": nil}, []string{"base", "l", "r", "top"}, ""},
		{"self", map[string][]string{"a": {"a"}}, nil, "a -> a"},
		{"three", map[string][]string{"web": {"api"}, "api": {"db"}, "db": {"web"}}, nil, "api -> db -> web -> api"},
		{"cycle behind a chain", map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"b"}}, nil, "b -> c -> b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DependencyOrder(tt.deps)
			if tt.err != "" {
				if !errors.Is(err, ErrDependencyCycle) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want a cycle naming %q", err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("order = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestDependencyOrderLongChain: the walk is iterative, so a chain of
// 100,000 services is ordered without recursion that deep.
func TestDependencyOrderLongChain(t *testing.T) {
	const n = 100_000
	deps := map[string][]string{strconv.Itoa(n): nil}
	for i := range n {
		deps[strconv.Itoa(i)] = []string{strconv.Itoa(i + 1)}
	}
	got, err := DependencyOrder(deps)
	if err != nil || len(got) != n+1 || got[0] != strconv.Itoa(n) || got[n] != "0" {
		t.Fatalf("order of a chain of %d: %d names, %v", n, len(got), err)
	}
}

func TestValidateDependencyGraph(t *testing.T) {
	existing := map[string][]string{"web": nil, "db": {"web"}, "cache": {"db"}, "x": {"y"}, "y": {"x"}}
	dep := func(names ...string) []Dependency {
		var out []Dependency
		for _, n := range names {
			out = append(out, Dependency{Service: n, Condition: DependStarted})
		}
		return out
	}
	tests := []struct {
		name string
		spec string
		deps []Dependency
		prev []Dependency
		want string
	}{
		{name: "new on existing", spec: "api", deps: dep("db", "web")},
		{name: "unknown", spec: "api", deps: dep("web", "nosuch"), want: `spec.depends_on[1].service "nosuch": no such service`},
		{name: "unknown but held before", spec: "cache", deps: dep("gone"), prev: dep("gone")},
		{name: "two-step cycle", spec: "web", deps: dep("db"), want: "web -> db -> web"},
		{name: "three-step cycle", spec: "web", deps: dep("cache"), want: "web -> cache -> db -> web"},
		{name: "a cycle elsewhere is not this request's", spec: "api", deps: dep("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateDependencyGraph(&ServiceSpec{Name: tt.spec, DependsOn: tt.deps}, tt.prev, existing)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid naming %q", err, tt.want)
			}
			if strings.Contains(tt.want, "->") && !errors.Is(err, ErrDependencyCycle) {
				t.Fatalf("err = %v, want ErrDependencyCycle", err)
			}
		})
	}
}
