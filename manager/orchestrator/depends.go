package orchestrator

import (
	"fmt"

	"github.com/shoal-sched/shoal/api"
)

// dependencyWait says what svc's tasks wait for before they may be
// scheduled ("" when every depends_on edge is met): the first unmet edge,
// in the order the spec lists them.
func (p *pass) dependencyWait(svc *api.Service) string {
	if w, ok := p.waits[svc.ID]; ok {
		return w
	}
	w := ""
	for _, d := range svc.Spec.DependsOn {
		if w = p.unmet(d); w != "" {
			break
		}
	}
	p.waits[svc.ID] = w
	return w
}

// unmet checks one edge against the dependency's tasks as this pass sees
// them. service_started counts running tasks; service_healthy counts the
// tasks that are up (api.TaskUp) with a health check, so a dependency
// without one holds its dependents with a reason that says so.
func (p *pass) unmet(d api.Dependency) string {
	cond := d.Condition
	if cond == "" {
		cond = api.DependStarted
	}
	label := fmt.Sprintf("waiting for service %q (%s)", d.Service, cond)
	dep := p.serviceNamed(d.Service)
	if dep == nil {
		return label + ": no such service"
	}
	groups := p.tasksOf(dep.ID).sorted()
	want := p.desiredReplicas(dep, groups)
	switch cond {
	case api.DependStarted:
		if n := countGroups(groups, isRunning); n < want {
			return fmt.Sprintf("%s: %d of %d replicas running", label, n, want)
		}
	case api.DependHealthy:
		if n := countGroups(groups, p.isHealthy); n < want {
			return fmt.Sprintf("%s: %d of %d replicas healthy%s", label, n, want, p.healthNote(dep, groups))
		}
	case api.DependCompletedSuccessfully:
		if n := countGroups(groups, exitedZero); n < want {
			return fmt.Sprintf("%s: %d of %d replicas exited 0", label, n, want)
		}
	default:
		return fmt.Sprintf("%s: unknown condition: want %s, %s or %s",
			label, api.DependStarted, api.DependHealthy, api.DependCompletedSuccessfully)
	}
	return ""
}

// desiredReplicas is how many replicas a service wants: Replicas, or for
// a global service the nodes it has a task on.
func (p *pass) desiredReplicas(svc *api.Service, groups []*group) int {
	if svc.Spec.Mode != api.ModeGlobal {
		return p.replicas(svc)
	}
	n := 0
	for _, g := range groups {
		if g.occupied() {
			n++
		}
	}
	return n
}

// countGroups counts the groups with a task that satisfies ok.
func countGroups(groups []*group, ok func(*group) bool) int {
	n := 0
	for _, g := range groups {
		if ok(g) {
			n++
		}
	}
	return n
}

func isRunning(g *group) bool {
	for _, t := range g.live {
		if t.Status.State == api.TaskRunning {
			return true
		}
	}
	return false
}

// exitedZero: some task of the group completed with exit code 0 (once is
// enough, as in Compose).
func exitedZero(g *group) bool {
	for _, ts := range [][]*api.Task{g.live, g.dead, g.past} {
		for _, t := range ts {
			if t.Status.State == api.TaskComplete && t.Status.ExitCode == 0 {
				return true
			}
		}
	}
	return false
}

// isHealthy: some live task of the group is up with a health check that
// says healthy.
func (p *pass) isHealthy(g *group) bool {
	for _, t := range g.live {
		if t.Status.Health == api.HealthHealthy && api.TaskUp(t, p.specOf(t)) {
			return true
		}
	}
	return false
}

// healthNote says why running replicas of a dependency do not count as
// healthy: it has no health check at all, or they have not passed it yet.
func (p *pass) healthNote(dep *api.Service, groups []*group) string {
	running, unchecked, unhealthy := 0, 0, 0
	for _, g := range groups {
		for _, t := range g.live {
			if t.Status.State != api.TaskRunning {
				continue
			}
			running++
			switch t.Status.Health {
			case api.HealthNone:
				unchecked++
			case api.HealthUnhealthy:
				unhealthy++
			}
		}
	}
	switch {
	case running > 0 && unchecked == running && !api.HealthcheckEnabled(&dep.Spec):
		return fmt.Sprintf(" (%d running, but the service has no health check: add one, or depend on service_started)", running)
	case unhealthy > 0:
		return fmt.Sprintf(" (%d running but unhealthy)", unhealthy)
	case running > 0:
		return fmt.Sprintf(" (%d running, health check not passed yet)", running)
	}
	return ""
}
