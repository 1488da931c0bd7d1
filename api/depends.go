package api

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ErrDependencyCycle: services depend on each other in a loop, so none of
// them could ever start.
var ErrDependencyCycle = errors.New("depends_on cycle")

// DependencyOrder returns the services of deps (each mapped to the names
// it depends on) so that each comes after everything it depends on; among
// services free to go, names sort. A cycle is an error wrapping
// ErrDependencyCycle that names it: "web -> api -> web". A name that is
// depended on but not a key of deps has no edges of its own and is left
// out of the result. The result is the same for the same graph, whatever
// the map order. The walk is iterative, so a long chain cannot exhaust the
// stack.
func DependencyOrder(deps map[string][]string) ([]string, error) {
	const (
		unseen = iota
		visiting
		done
	)
	state := map[string]int{}
	var out []string
	for _, root := range slices.Sorted(maps.Keys(deps)) {
		if state[root] != unseen {
			continue
		}
		state[root] = visiting
		stack := []depFrame{{root, slices.Sorted(slices.Values(deps[root]))}}
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if len(top.next) == 0 {
				state[top.name] = done
				out = append(out, top.name)
				stack = stack[:len(stack)-1]
				continue
			}
			dep := top.next[0]
			top.next = top.next[1:]
			switch _, known := deps[dep]; {
			case !known || state[dep] == done:
			case state[dep] == visiting:
				return nil, cycleError(stack, dep)
			default:
				state[dep] = visiting
				stack = append(stack, depFrame{dep, slices.Sorted(slices.Values(deps[dep]))})
			}
		}
	}
	return out, nil
}

// depFrame is one service on the walk's path, with the dependencies not
// walked yet.
type depFrame struct {
	name string
	next []string
}

// cycleError names the loop that closes at dep, found on the walk's path.
func cycleError(stack []depFrame, dep string) error {
	path := make([]string, 0, len(stack)+1)
	for _, f := range stack {
		path = append(path, f.name)
	}
	i := slices.Index(path, dep)
	cycle := append(path[i:], dep)
	return fmt.Errorf("%w: %s; remove one of these depends_on entries", ErrDependencyCycle, strings.Join(cycle, " -> "))
}

// ValidateDependencyGraph checks spec's depends_on against the services
// the cluster has (deps maps each existing service's name to the names it
// depends on). Every entry that prev (the service's current depends_on;
// nil for a new service) does not hold must name an existing service, and
// the graph with spec in it must have no cycle. Entries already held may
// name a service removed since: the orchestrator reports them as unmet.
func ValidateDependencyGraph(spec *ServiceSpec, prev []Dependency, deps map[string][]string) error {
	held := map[string]bool{}
	for _, d := range prev {
		held[d.Service] = true
	}
	var errs []error
	for i, d := range spec.DependsOn {
		if _, ok := deps[d.Service]; !ok && !held[d.Service] {
			errs = append(errs, fieldErr(fmt.Sprintf("spec.depends_on[%d].service", i), d.Service,
				"no such service; create it first (stack deploy creates services in depends_on order)"))
		}
	}
	if len(errs) > 0 {
		return joinErrors(errs)
	}
	if cycle := cycleThrough(spec, deps); cycle != nil {
		return &FieldError{Field: "spec.depends_on", Value: spec.Name, Err: fmt.Errorf(
			"%w: %s; remove one of these depends_on entries", ErrDependencyCycle, strings.Join(cycle, " -> "))}
	}
	return nil
}

// cycleThrough returns a loop of depends_on edges that leads from spec back
// to itself ("a -> b -> a"), or nil. Only loops through spec count: one
// elsewhere was there before this request. A breadth-first walk finds the
// shortest, and visits each service once.
func cycleThrough(spec *ServiceSpec, deps map[string][]string) []string {
	parent := map[string]string{}
	var queue []string
	for _, d := range spec.DependsOn {
		if _, seen := parent[d.Service]; !seen {
			parent[d.Service] = spec.Name
			queue = append(queue, d.Service)
		}
	}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == spec.Name {
			path := []string{spec.Name}
			for at := parent[spec.Name]; at != spec.Name; at = parent[at] {
				path = append(path, at)
			}
			slices.Reverse(path)
			return append([]string{spec.Name}, path...)
		}
		for _, next := range slices.Sorted(slices.Values(deps[cur])) {
			if _, seen := parent[next]; !seen {
				parent[next] = cur
				queue = append(queue, next)
			}
		}
	}
	return nil
}
