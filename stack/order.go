package stack

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// dependencies maps each service of p to the services it depends on that
// p holds (an optional dependency left out by a profile is no edge).
func dependencies(p *types.Project) map[string][]string {
	deps := map[string][]string{}
	for name, s := range p.Services {
		deps[name] = nil
		for dep := range s.DependsOn {
			if _, ok := p.Services[dep]; ok {
				deps[name] = append(deps[name], dep)
			}
		}
	}
	return deps
}

// order returns the services of deps so that each comes after everything
// it depends on; among services free to go, names sort. A cycle is an
// error that names it: "web -> api -> web". The result is the same for
// the same graph, whatever the map order.
func order(deps map[string][]string) ([]string, error) {
	const (
		unseen = iota
		visiting
		done
	)
	state := map[string]int{}
	var out []string
	var path []string
	var visit func(name string) error
	visit = func(name string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			i := slices.Index(path, name)
			cycle := append(slices.Clone(path[i:]), name)
			return fmt.Errorf("%w: %s; remove one of these depends_on entries", ErrCycle, strings.Join(cycle, " -> "))
		}
		state[name] = visiting
		path = append(path, name)
		for _, dep := range slices.Sorted(slices.Values(deps[name])) {
			if err := visit(dep); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		state[name] = done
		out = append(out, name)
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(deps)) {
		if err := visit(name); err != nil {
			return nil, err
		}
	}
	return out, nil
}
