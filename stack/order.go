package stack

import (
	"github.com/compose-spec/compose-go/v2/types"
)

// dependencies maps each service of p to the services it depends on that
// p holds (an optional dependency left out by a profile is no edge), the
// graph api.DependencyOrder orders, as the manager checks it.
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
