package controlapi

import (
	"context"
	"maps"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// The rules themselves live in api (and the wire-only ones in shoalpb), so
// that shoalctl can check a request before it sends it with the very same
// functions. This file only says which request runs which rule, and when:
// the rules that need nothing but the request run on whichever manager
// receives it, before anything is forwarded or proposed; the ones that
// need the cluster's state run on the leader.

// readSpec converts a spec from the wire and checks what only the wire form
// can get wrong. A missing spec is an error.
func readSpec(pb *shoalpb.ServiceSpec) (*api.ServiceSpec, error) {
	if pb == nil {
		return nil, errMissing("spec")
	}
	if err := shoalpb.CheckServiceSpec(pb); err != nil {
		return nil, err
	}
	return shoalpb.ToServiceSpec(pb), nil
}

// prepareSpec fills in a spec's defaults and checks it. A rejected spec
// returns an error wrapping api.ErrInvalid that names every bad field and
// its value.
func prepareSpec(spec *api.ServiceSpec) error {
	api.ApplyDefaults(spec)
	return api.ValidateServiceSpec(spec)
}

// checkInCluster checks a prepared spec against the cluster's state v: the
// replica count against the cluster's max-replicas, and depends_on against
// the services there are (prev is the service's depends_on before this
// request, nil for a new service).
func checkInCluster(v *raftstore.View, spec *api.ServiceSpec, prev []api.Dependency) error {
	if spec.Mode == api.ModeReplicated {
		if err := api.ValidateReplicas("spec.replicas", spec.Replicas, v.Cluster().Settings.ReplicaLimit()); err != nil {
			return err
		}
	}
	if err := checkNetworking(v, spec); err != nil {
		return err
	}
	if err := resolveSecretRefs(v, spec); err != nil {
		return err
	}
	return api.ValidateDependencyGraph(spec, prev, dependencyGraph(v, spec))
}

// dependencyGraph maps the name of each service spec's depends_on can reach
// to the names it depends on: the part of the graph a cycle through spec
// would use, and the services its own entries name. It walks from spec
// instead of listing every service, so a write's check costs what its
// depends_on reaches, not the size of the cluster.
func dependencyGraph(v *raftstore.View, spec *api.ServiceSpec) map[string][]string {
	out := map[string][]string{}
	var queue []string
	for _, d := range spec.DependsOn {
		queue = append(queue, d.Service)
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if _, seen := out[name]; seen {
			continue
		}
		svc := v.ServiceByName(name)
		if svc == nil {
			continue
		}
		deps := make([]string, len(svc.Spec.DependsOn))
		for i, d := range svc.Spec.DependsOn {
			deps[i] = d.Service
		}
		out[name] = deps
		queue = append(queue, deps...)
	}
	return out
}

// checkFresh runs check on the leader's state and, before it reports a
// rejection, again on a state that holds every committed write (after a
// barrier): a leader just elected may not have applied its predecessor's
// last entries yet, and must not refuse what they made valid. A request
// that passes costs no barrier.
func (s *Server) checkFresh(ctx context.Context, check func(*raftstore.View) error) error {
	if check(s.state().Read()) == nil {
		return nil
	}
	if err := s.raft.VerifyLeader(ctx); err != nil {
		return err
	}
	return check(s.state().Read())
}

// nodeLabelsAfter is the labels node n has once an update adds add and
// removes rm.
func nodeLabelsAfter(n *api.Node, add map[string]string, rm []string) map[string]string {
	out := maps.Clone(n.Labels)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, add)
	for _, k := range rm {
		delete(out, k)
	}
	return out
}

func errMissing(field string) error { return invalidf("%s: missing", field) }
