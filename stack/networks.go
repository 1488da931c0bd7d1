package stack

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/shoal-sched/shoal/api"
)

// networkName is the shoal name of compose network key: its name (compose-go
// sets STACK_KEY for a network without one, as Swarm names it; an external
// network keeps its own name).
func (c *converter) networkName(key string) string {
	if n, ok := c.project.Networks[key]; ok && n.Name != "" {
		return n.Name
	}
	return ServiceName(c.stack, key)
}

// serviceNetworks sets a service's networks (each with its aliases), its
// published ports and its endpoint mode. A service with no networks key is
// on the stack's default network, STACK_default, as in Swarm.
func (c *converter) serviceNetworks(s types.ServiceConfig, spec *api.ServiceSpec) []error {
	switch s.NetworkMode {
	case "":
	case api.NetworkHost, api.NetworkNone:
		spec.Networks = []api.NetworkAttachmentSpec{{Target: s.NetworkMode}}
	default:
		c.warn(s.Name, "network_mode", "%q is not supported (host and none are); ignored", s.NetworkMode)
	}
	if spec.Networks == nil {
		for _, key := range slices.Sorted(maps.Keys(s.Networks)) {
			a := api.NetworkAttachmentSpec{Target: c.networkName(key)}
			if cfg := s.Networks[key]; cfg != nil {
				a.Aliases = slices.Clone(cfg.Aliases)
			}
			spec.Networks = append(spec.Networks, a)
		}
	}
	var errs []error
	for i, p := range s.Ports {
		key := fmt.Sprintf("ports[%d]", i)
		pc := api.PortConfig{Protocol: p.Protocol, PublishMode: p.Mode}
		if p.Target == 0 || p.Target > 65535 {
			errs = append(errs, keyError(s.Name, key+".target", strconv.FormatUint(uint64(p.Target), 10), fmt.Errorf("want a port 1 to 65535")))
			continue
		}
		pc.TargetPort = uint16(p.Target)
		if p.Published != "" {
			n, err := strconv.ParseUint(p.Published, 10, 16)
			if err != nil {
				errs = append(errs, keyError(s.Name, key+".published", p.Published, fmt.Errorf("want one port 0 to 65535 (ranges are not supported)")))
				continue
			}
			pc.PublishedPort = uint16(n)
		}
		if p.HostIP != "" {
			c.warn(s.Name, key+".host_ip", "%s: ports are published on every address; ignored", p.HostIP)
		}
		spec.Endpoint.Ports = append(spec.Endpoint.Ports, pc)
	}
	if s.Deploy != nil {
		spec.Endpoint.Mode = s.Deploy.EndpointMode
	}
	return errs
}

// stackNetworks lists the networks the stack's services are on that it
// creates (labelled with the stack), and the external ones that must exist.
func (c *converter) stackNetworks(specs map[string]*api.ServiceSpec) (own []api.NetworkSpec, external []string, errs []error) {
	used := map[string]bool{}
	for _, s := range c.project.Services {
		for key := range s.Networks {
			used[key] = true
		}
	}
	for _, key := range slices.Sorted(maps.Keys(c.project.Networks)) {
		n := c.project.Networks[key]
		if !used[key] {
			continue
		}
		name := c.networkName(key)
		if bool(n.External) {
			external = append(external, name)
			continue
		}
		spec := api.NetworkSpec{Name: name, Driver: api.NetworkDriverOverlay, Attachable: n.Attachable, Internal: n.Internal,
			Labels: map[string]string{api.LabelStack: c.stack}}
		maps.Copy(spec.Labels, n.Labels)
		spec.Labels[api.LabelStack] = c.stack
		if n.Driver != "" && n.Driver != api.NetworkDriverOverlay {
			c.warn("", "networks."+key+".driver", "%q: shoal networks are overlay networks; overlay is used", n.Driver)
		}
		for i, pool := range n.Ipam.Config {
			switch {
			case pool == nil || pool.Subnet == "":
			case i == 0:
				spec.Subnet = pool.Subnet
			default:
				c.warn("", fmt.Sprintf("networks.%s.ipam.config[%d]", key, i), "a network has one subnet; %s ignored", pool.Subnet)
			}
		}
		if err := api.ValidateNetworkSpec(&spec); err != nil {
			errs = append(errs, &api.FieldError{Field: "networks." + key, Value: name, Err: err})
			continue
		}
		own = append(own, spec)
	}
	return own, external, errs
}
