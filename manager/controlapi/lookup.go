package controlapi

import (
	"fmt"
	"strings"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// findService resolves ref as an exact id, a name, or a unique id prefix,
// in that order (as `docker service` does).
func findService(v *raftstore.View, ref string) (*api.Service, error) {
	if ref == "" {
		return nil, invalidf("service: empty; give a service name or id")
	}
	if s := v.Service(ref); s != nil {
		return s, nil
	}
	if s := v.ServiceByName(ref); s != nil {
		return s, nil
	}
	var found []*api.Service
	for _, s := range v.Services() {
		if strings.HasPrefix(s.ID, ref) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("service %q: %w (no service has this name, id or id prefix)", ref, raftstore.ErrNotFound)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, s := range found {
		ids[i] = s.ID + " (" + s.Spec.Name + ")"
	}
	return nil, fmt.Errorf("service %q is %w: it prefixes %d service ids: %s; give more of the id",
		ref, ErrAmbiguous, len(found), strings.Join(ids, ", "))
}

// findNode resolves ref as an exact id, a unique id prefix or a unique
// hostname.
func findNode(v *raftstore.View, ref string) (*api.Node, error) {
	if ref == "" {
		return nil, invalidf("node: empty; give a node id or hostname")
	}
	if n := v.Node(ref); n != nil {
		return n, nil
	}
	var byPrefix, byHost []*api.Node
	for _, n := range v.Nodes() {
		if strings.HasPrefix(n.ID, ref) {
			byPrefix = append(byPrefix, n)
		}
		if n.Hostname == ref {
			byHost = append(byHost, n)
		}
	}
	found := byPrefix
	if len(found) == 0 {
		found = byHost
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("node %q: %w (no node has this id, id prefix or hostname)", ref, raftstore.ErrNotFound)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, n := range found {
		ids[i] = n.ID + " (" + n.Hostname + ")"
	}
	return nil, fmt.Errorf("node %q is %w: it matches %d nodes: %s; give the node id",
		ref, ErrAmbiguous, len(found), strings.Join(ids, ", "))
}
