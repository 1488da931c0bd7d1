package controlapi

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/allocator"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// CreateNetwork validates a network spec, allocates its subnet (the one
// asked for, checked against every network, the ingress range and the
// nodes' own addresses; else a free /24 of the default pool) and VNI, and
// commits it.
func (s *Server) CreateNetwork(ctx context.Context, req *shoalpb.CreateNetworkRequest) (*shoalpb.NetworkSummary, error) {
	if req.GetSpec() == nil {
		return nil, toStatus(errMissing("spec"))
	}
	spec := shoalpb.ToNetworkSpec(req.GetSpec())
	if err := api.ValidateNetworkSpec(&spec); err != nil {
		return nil, toStatus(err)
	}
	ctx, rid, err := requestID(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.NetworkSummary, error) {
		if err := s.raft.VerifyLeader(ctx); err != nil {
			return nil, err
		}
		v := s.state().Read()
		if r, ok := v.Request(rid); ok && !req.GetDryRun() {
			n := written(r.Value, func() *api.Network { return v.NetworkByName(spec.Name) })
			return &shoalpb.NetworkSummary{Network: shoalpb.FromNetwork(n), Index: r.Index}, nil
		}
		n, err := planNetwork(v, spec)
		if err != nil || req.GetDryRun() {
			return &shoalpb.NetworkSummary{Network: shoalpb.FromNetwork(n)}, err
		}
		n.ID = newID()
		resp, err := s.commit(ctx, rid, raftstore.CreateNetwork{Network: n, At: now()})
		if err != nil {
			return nil, err
		}
		got := written(resp.Value, func() *api.Network { return s.state().Read().NetworkByName(spec.Name) })
		return &shoalpb.NetworkSummary{Network: shoalpb.FromNetwork(got), Index: resp.Index}, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.NetworkSummary, error) {
		return c.CreateNetwork(ctx, req)
	})
}

// planNetwork checks a valid spec against the state and completes it.
func planNetwork(v *raftstore.View, spec api.NetworkSpec) (*api.Network, error) {
	nets := v.Networks()
	if v.NetworkByName(spec.Name) != nil {
		return nil, fmt.Errorf("network %q: %w; choose another name", spec.Name, raftstore.ErrAlreadyExists)
	}
	if len(nets) >= api.MaxNetworks {
		return nil, &api.FieldError{Field: "spec.name", Value: spec.Name, Err: fmt.Errorf("the cluster has %d networks, at most %d allowed", len(nets), api.MaxNetworks)}
	}
	if spec.Subnet != "" {
		if err := checkSubnet(v, netip.MustParsePrefix(spec.Subnet)); err != nil {
			return nil, &api.FieldError{Field: "spec.subnet", Value: spec.Subnet, Err: err}
		}
	}
	n, err := allocator.NewNetwork(spec, nets)
	if err != nil {
		return nil, &api.FieldError{Field: "spec.subnet", Value: spec.Subnet, Err: err}
	}
	return n, nil
}

// checkSubnet refuses a subnet that would meet another network, the
// routing mesh's range, or an address the nodes use to reach each other.
func checkSubnet(v *raftstore.View, p netip.Prefix) error {
	if o := allocator.Overlap(p, v.Networks()); o != nil {
		return fmt.Errorf("overlaps network %q (%s)", o.Spec.Name, o.Subnet)
	}
	if p.Overlaps(allocator.IngressSubnet) {
		return fmt.Errorf("overlaps %s, reserved for the ingress network", allocator.IngressSubnet)
	}
	for _, n := range v.Nodes() {
		if a, err := netip.ParseAddr(underlayHost(n.Addr)); err == nil && p.Contains(a) {
			return fmt.Errorf("holds %s, the address of node %s (%s): containers could not reach that host", a, n.Hostname, n.ID)
		}
	}
	return nil
}

func underlayHost(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return strings.Trim(addr[:i], "[]")
	}
	return addr
}

// ListNetworks returns every network with the services on it.
func (s *Server) ListNetworks(ctx context.Context, req *shoalpb.ListNetworksRequest) (*shoalpb.ListNetworksResponse, error) {
	return read(ctx, s, req.GetStale(), func(v *raftstore.View) (*shoalpb.ListNetworksResponse, error) {
		out := &shoalpb.ListNetworksResponse{}
		for _, n := range v.Networks() {
			out.Networks = append(out.Networks, networkSummary(v, n))
		}
		return out, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.ListNetworksResponse, error) {
		return c.ListNetworks(ctx, req)
	})
}

// GetNetwork returns one network by name, id or id prefix.
func (s *Server) GetNetwork(ctx context.Context, req *shoalpb.GetNetworkRequest) (*shoalpb.NetworkSummary, error) {
	if err := api.ValidateRef("network", req.GetNetwork(), true); err != nil {
		return nil, toStatus(err)
	}
	return read(ctx, s, req.GetStale(), func(v *raftstore.View) (*shoalpb.NetworkSummary, error) {
		n, err := findNetwork(v, req.GetNetwork())
		if err != nil {
			return nil, err
		}
		return networkSummary(v, n), nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.NetworkSummary, error) {
		return c.GetNetwork(ctx, req)
	})
}

// RemoveNetwork deletes a network no service uses (the FSM refuses it
// otherwise, naming the service). The ingress network goes when no service
// publishes through the mesh; the leader makes it again on first need.
func (s *Server) RemoveNetwork(ctx context.Context, req *shoalpb.RemoveNetworkRequest) (*shoalpb.RemoveNetworkResponse, error) {
	if err := api.ValidateRef("network", req.GetNetwork(), true); err != nil {
		return nil, toStatus(err)
	}
	ctx, rid, err := requestID(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.RemoveNetworkResponse, error) {
		if err := s.raft.VerifyLeader(ctx); err != nil {
			return nil, err
		}
		v := s.state().Read()
		if r, ok := v.Request(rid); ok {
			return &shoalpb.RemoveNetworkResponse{Index: r.Index}, nil
		}
		n, err := findNetwork(v, req.GetNetwork())
		if err != nil {
			return nil, err
		}
		resp, err := s.commit(ctx, rid, raftstore.RemoveNetwork{ID: n.ID})
		if err != nil {
			return nil, err
		}
		return &shoalpb.RemoveNetworkResponse{Index: resp.Index}, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.RemoveNetworkResponse, error) {
		return c.RemoveNetwork(ctx, req)
	})
}

func networkSummary(v *raftstore.View, n *api.Network) *shoalpb.NetworkSummary {
	out := &shoalpb.NetworkSummary{Network: shoalpb.FromNetwork(n)}
	for _, svc := range v.Services() {
		if api.UsesNetwork(&svc.Spec, n) {
			out.Services = append(out.Services, svc.Spec.Name)
		}
	}
	return out
}

// findNetwork resolves ref as an exact id, a name, or a unique id prefix.
func findNetwork(v *raftstore.View, ref string) (*api.Network, error) {
	if n := v.Network(ref); n != nil {
		return n, nil
	}
	if n := v.NetworkByName(ref); n != nil {
		return n, nil
	}
	var found []*api.Network
	for _, n := range v.Networks() {
		if strings.HasPrefix(n.ID, ref) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("network %q: %w (no network has this name, id or id prefix; see shoalctl network ls)", ref, raftstore.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("network %q is %w: it prefixes %d network ids; give more of the id", ref, ErrAmbiguous, len(found))
}

// checkNetworking checks a prepared spec's networks and ports against the
// state: every network it names exists, and no port it publishes is
// published by another service in a way that meets it.
func checkNetworking(v *raftstore.View, spec *api.ServiceSpec) error {
	var errs []error
	for i, a := range api.OverlayTargets(spec) {
		if _, err := findNetwork(v, a.Target); err != nil {
			errs = append(errs, &api.FieldError{Field: fmt.Sprintf("spec.networks[%d].target", i), Value: a.Target, Err: err})
		}
	}
	// Listing every service is the costly part: only a published port
	// needs it.
	var services []*api.Service
	for i, p := range spec.Endpoint.Ports {
		if p.PublishedPort == 0 {
			continue
		}
		if services == nil {
			services = v.Services()
		}
		if owner := allocator.PortOwner(services, spec.Name, p); owner != "" {
			errs = append(errs, &api.FieldError{Field: fmt.Sprintf("spec.endpoint.ports[%d].published_port", i), Value: fmt.Sprint(p.PublishedPort),
				Err: fmt.Errorf("port %d/%s is already published by service %q: %w", p.PublishedPort, p.PortProtocol(), owner, raftstore.ErrConflict)})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}
