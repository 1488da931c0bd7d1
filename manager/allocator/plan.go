package allocator

import (
	"fmt"
	"reflect"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// maxTasksPerPlan bounds the tasks one entry allocates; the rest wait for
// the next pass.
var maxTasksPerPlan = 2000

// Inputs is the part of the state a pass reads.
type Inputs struct {
	Networks []*api.Network
	Services []*api.Service // sorted by name
	Tasks    []*api.Task    // in the store's order
	SpecOf   func(*api.Task) *api.ServiceSpec
}

// Plan is what one pass commits.
type Plan struct {
	// CreateIngress: a service publishes through the mesh and there is no
	// ingress network yet; nothing else is planned until it exists.
	CreateIngress bool
	Alloc         raftstore.AllocateNetworks
	Pending       []raftstore.PendingReason
}

// Empty reports whether the plan commits nothing.
func (p *Plan) Empty() bool {
	return !p.CreateIngress && len(p.Alloc.Services) == 0 && len(p.Alloc.Tasks) == 0 && len(p.Pending) == 0
}

type world struct {
	byRef   map[string]*api.Network // by name and by ID
	ingress *api.Network
	pools   map[string]*ipPool // by network ID
	ports   map[string]bool    // "tcp/8080" published anywhere
}

// Compute plans one pass. It is a pure function of its inputs.
func Compute(in Inputs) Plan {
	var plan Plan
	w := newWorld(in)
	for _, s := range in.Services {
		if api.PublishesIngress(&s.Spec) && w.ingress == nil {
			plan.CreateIngress = true
			return plan
		}
	}
	for _, s := range in.Services {
		if ep := w.endpoint(s); !reflect.DeepEqual(ep, s.Endpoint) {
			plan.Alloc.Services = append(plan.Alloc.Services, raftstore.ServiceAllocation{ServiceID: s.ID, Endpoint: ep})
		}
	}
	for _, t := range in.Tasks {
		if len(plan.Alloc.Tasks) >= maxTasksPerPlan {
			break
		}
		if len(t.Networks) > 0 || t.DesiredState > api.TaskRunning || t.Status.State > api.TaskPending {
			continue
		}
		spec := in.SpecOf(t)
		if spec == nil || !api.NeedsNetworks(spec) {
			continue
		}
		atts, err := w.attach(spec)
		if err != nil {
			reason := api.NetworkPendingPrefix + err.Error()
			if t.Status.PendingReason != reason {
				plan.Pending = append(plan.Pending, raftstore.PendingReason{TaskID: t.ID, Reason: reason})
			}
			continue
		}
		plan.Alloc.Tasks = append(plan.Alloc.Tasks, raftstore.TaskAllocation{TaskID: t.ID, Networks: atts})
	}
	return plan
}

// newWorld marks in use everything the state holds: the services' VIPs and
// published ports, and the addresses of tasks that have not ended.
func newWorld(in Inputs) *world {
	w := &world{byRef: map[string]*api.Network{}, pools: map[string]*ipPool{}, ports: map[string]bool{}}
	for _, n := range in.Networks {
		w.byRef[n.Spec.Name], w.byRef[n.ID] = n, n
		if n.Ingress {
			w.ingress = n
		}
		if p, err := newIPPool(n); err == nil {
			w.pools[n.ID] = p
		}
	}
	for _, s := range in.Services {
		for _, v := range s.Endpoint.VIPs {
			if p := w.pools[v.NetworkID]; p != nil {
				p.take(v.Addr)
			}
		}
		for _, pc := range s.Endpoint.Ports {
			w.ports[portKey(pc)] = true
		}
	}
	for _, t := range in.Tasks {
		if t.Status.State.Terminal() {
			continue // its container is gone: its addresses are free
		}
		for _, a := range t.Networks {
			if p := w.pools[a.NetworkID]; p != nil {
				p.take(a.Addr)
			}
		}
	}
	return w
}

func portKey(p api.PortConfig) string {
	return fmt.Sprintf("%s/%d", p.PortProtocol(), p.PublishedPort)
}

// networksOf resolves the networks a service's tasks join, in spec order,
// then ingress when it publishes through the mesh.
func (w *world) networksOf(s *api.ServiceSpec) ([]*api.Network, []api.NetworkAttachmentSpec, error) {
	var nets []*api.Network
	var specs []api.NetworkAttachmentSpec
	for _, a := range api.OverlayTargets(s) {
		n := w.byRef[a.Target]
		if n == nil {
			return nil, nil, fmt.Errorf("network %q not found", a.Target)
		}
		nets, specs = append(nets, n), append(specs, a)
	}
	if api.PublishesIngress(s) && w.ingress != nil {
		nets, specs = append(nets, w.ingress), append(specs, api.NetworkAttachmentSpec{Target: w.ingress.ID})
	}
	return nets, specs, nil
}

// endpoint returns what service s should have: its ports with every
// published port chosen (the one it had, else the lowest free dynamic
// port), and a VIP on each of its networks in VIP mode (kept if it had one).
func (w *world) endpoint(s *api.Service) api.ServiceEndpoint {
	var ep api.ServiceEndpoint
	for _, p := range s.Spec.Endpoint.Ports {
		p.Protocol, p.PublishMode = p.PortProtocol(), p.Mode()
		if p.PublishedPort == 0 {
			p.PublishedPort = w.dynamicPort(s.Endpoint, p)
		}
		if p.PublishedPort != 0 {
			w.ports[portKey(p)] = true
		}
		ep.Ports = append(ep.Ports, p)
	}
	if api.EndpointModeOf(&s.Spec) != api.EndpointModeVIP {
		return ep
	}
	nets, _, err := w.networksOf(&s.Spec)
	if err != nil {
		return ep
	}
	for _, n := range nets {
		if v, ok := vipOn(s.Endpoint, n.ID); ok {
			ep.VIPs = append(ep.VIPs, v)
			continue
		}
		if p := w.pools[n.ID]; p != nil {
			if cidr, _, err := p.get(); err == nil {
				ep.VIPs = append(ep.VIPs, api.VIP{NetworkID: n.ID, Addr: cidr})
			}
		}
	}
	return ep
}

func vipOn(ep api.ServiceEndpoint, networkID string) (api.VIP, bool) {
	for _, v := range ep.VIPs {
		if v.NetworkID == networkID {
			return v, true
		}
	}
	return api.VIP{}, false
}

// dynamicPort returns the port chosen before for the same target, protocol
// and mode, else the lowest free port of the dynamic range (0: none left).
func (w *world) dynamicPort(cur api.ServiceEndpoint, want api.PortConfig) uint16 {
	for _, p := range cur.Ports {
		if p.TargetPort == want.TargetPort && p.PortProtocol() == want.Protocol && p.Mode() == want.PublishMode && p.PublishedPort != 0 {
			return p.PublishedPort
		}
	}
	for port := api.DynamicPortFirst; port <= api.DynamicPortLast; port++ {
		want.PublishedPort = uint16(port)
		if !w.ports[portKey(want)] {
			return uint16(port)
		}
	}
	return 0
}

// attach gives a task an address on each of its service's networks, or
// none (and the reason) if one network has no address left.
func (w *world) attach(s *api.ServiceSpec) ([]api.NetworkAttachment, error) {
	nets, specs, err := w.networksOf(s)
	if err != nil {
		return nil, err
	}
	var out []api.NetworkAttachment
	for i, n := range nets {
		p := w.pools[n.ID]
		if p == nil {
			return nil, fmt.Errorf("network %q has no usable subnet (%q)", n.Spec.Name, n.Subnet)
		}
		cidr, a, err := p.get()
		if err != nil {
			w.release(out)
			return nil, err
		}
		out = append(out, api.NetworkAttachment{NetworkID: n.ID, Addr: cidr, MAC: api.MACFromAddr(a), Aliases: specs[i].Aliases})
	}
	return out, nil
}

// release gives back the addresses of an attachment that was not made.
func (w *world) release(atts []api.NetworkAttachment) {
	for _, a := range atts {
		if p := w.pools[a.NetworkID]; p != nil {
			if pfx, err := parseAddr(a.Addr); err == nil {
				delete(p.used, pfx)
				p.next = min(p.next, u32(pfx))
			}
		}
	}
}

// PortOwner returns the service (other than self, an ID or a name) that
// publishes the same port (protocol/number) in a way that meets port's,
// or "": the control API refuses such a conflict at create and update.
func PortOwner(services []*api.Service, self string, port api.PortConfig) string {
	key := portKey(port)
	for _, s := range services {
		if s.ID == self || s.Spec.Name == self {
			continue
		}
		for _, p := range append(s.Endpoint.Ports, s.Spec.Endpoint.Ports...) {
			// Two host-mode ports meet only on a node, which the
			// scheduler prevents; the mesh's port is every node's.
			hostOnly := p.Mode() == api.PublishModeHost && port.Mode() == api.PublishModeHost
			if p.PublishedPort != 0 && portKey(p) == key && !hostOnly {
				return s.Spec.Name
			}
		}
	}
	return ""
}
