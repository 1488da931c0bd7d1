package shoalpb

import (
	"fmt"
	"math"
	"slices"

	"github.com/shoal-sched/shoal/api"
)

// FromNetworkSpec converts a domain network spec to the message.
func FromNetworkSpec(s api.NetworkSpec) *NetworkSpec {
	return &NetworkSpec{Name: s.Name, Driver: s.Driver, Subnet: s.Subnet, Labels: s.Labels, Attachable: s.Attachable, Internal: s.Internal}
}

// ToNetworkSpec converts the message to a domain network spec.
func ToNetworkSpec(s *NetworkSpec) api.NetworkSpec {
	return api.NetworkSpec{
		Name: s.GetName(), Driver: s.GetDriver(), Subnet: s.GetSubnet(), Labels: s.GetLabels(),
		Attachable: s.GetAttachable(), Internal: s.GetInternal(),
	}
}

// FromNetwork converts a domain network to the message.
func FromNetwork(n *api.Network) *Network {
	if n == nil {
		return nil
	}
	return &Network{Id: n.ID, Spec: FromNetworkSpec(n.Spec), Subnet: n.Subnet, Gateway: n.Gateway, Vni: n.VNI, Ingress: n.Ingress}
}

// ToNetwork converts the message to a domain network.
func ToNetwork(n *Network) *api.Network {
	if n == nil {
		return nil
	}
	return &api.Network{ID: n.GetId(), Spec: ToNetworkSpec(n.GetSpec()), Subnet: n.GetSubnet(), Gateway: n.GetGateway(), VNI: n.GetVni(), Ingress: n.GetIngress()}
}

func fromAttachmentSpecs(in []api.NetworkAttachmentSpec) []*NetworkAttachmentSpec {
	var out []*NetworkAttachmentSpec
	for _, a := range in {
		out = append(out, &NetworkAttachmentSpec{Target: a.Target, Aliases: a.Aliases})
	}
	return out
}

func toAttachmentSpecs(in []*NetworkAttachmentSpec) []api.NetworkAttachmentSpec {
	var out []api.NetworkAttachmentSpec
	for _, a := range in {
		out = append(out, api.NetworkAttachmentSpec{Target: a.GetTarget(), Aliases: a.GetAliases()})
	}
	return out
}

func fromPorts(in []api.PortConfig) []*PortConfig {
	var out []*PortConfig
	for _, p := range in {
		out = append(out, &PortConfig{Protocol: p.Protocol, TargetPort: uint32(p.TargetPort), PublishedPort: uint32(p.PublishedPort), PublishMode: p.PublishMode})
	}
	return out
}

// toPorts converts ports; a number over 65535 (which CheckServiceSpec
// refuses first on the control API) reads as 0, never as a wrapped port.
func toPorts(in []*PortConfig) []api.PortConfig {
	var out []api.PortConfig
	for _, p := range in {
		out = append(out, api.PortConfig{Protocol: p.GetProtocol(), TargetPort: port16(p.GetTargetPort()), PublishedPort: port16(p.GetPublishedPort()), PublishMode: p.GetPublishMode()})
	}
	return out
}

func port16(p uint32) uint16 {
	if p > math.MaxUint16 {
		return 0
	}
	return uint16(p)
}

// checkPorts refuses port numbers a uint16 cannot hold.
func checkPorts(e *EndpointSpec) error {
	for i, p := range e.GetPorts() {
		for _, f := range []struct {
			name string
			v    uint32
		}{{"target_port", p.GetTargetPort()}, {"published_port", p.GetPublishedPort()}} {
			if f.v > math.MaxUint16 {
				return &api.FieldError{Field: fmt.Sprintf("spec.endpoint.ports[%d].%s", i, f.name), Value: fmt.Sprint(f.v), Err: fmt.Errorf("over the largest port, %d", math.MaxUint16)}
			}
		}
	}
	return nil
}

// FromEndpointSpec converts a domain endpoint spec to the message (nil when empty).
func FromEndpointSpec(e api.EndpointSpec) *EndpointSpec {
	if e.Mode == "" && len(e.Ports) == 0 {
		return nil
	}
	return &EndpointSpec{Mode: e.Mode, Ports: fromPorts(e.Ports)}
}

// ToEndpointSpec converts the message to a domain endpoint spec.
func ToEndpointSpec(e *EndpointSpec) api.EndpointSpec {
	return api.EndpointSpec{Mode: e.GetMode(), Ports: toPorts(e.GetPorts())}
}

func fromVIPs(in []api.VIP) []*VIP {
	var out []*VIP
	for _, v := range in {
		out = append(out, &VIP{NetworkId: v.NetworkID, Addr: v.Addr})
	}
	return out
}

func toVIPs(in []*VIP) []api.VIP {
	var out []api.VIP
	for _, v := range in {
		out = append(out, api.VIP{NetworkID: v.GetNetworkId(), Addr: v.GetAddr()})
	}
	return out
}

// FromServiceEndpoint converts what the leader allocated for a service.
func FromServiceEndpoint(e api.ServiceEndpoint) *ServiceEndpoint {
	if len(e.Ports) == 0 && len(e.VIPs) == 0 {
		return nil
	}
	return &ServiceEndpoint{Ports: fromPorts(e.Ports), Vips: fromVIPs(e.VIPs)}
}

// ToServiceEndpoint converts the message.
func ToServiceEndpoint(e *ServiceEndpoint) api.ServiceEndpoint {
	return api.ServiceEndpoint{Ports: toPorts(e.GetPorts()), VIPs: toVIPs(e.GetVips())}
}

// FromAttachments converts a task's network attachments.
func FromAttachments(in []api.NetworkAttachment) []*NetworkAttachment {
	var out []*NetworkAttachment
	for _, a := range in {
		out = append(out, &NetworkAttachment{NetworkId: a.NetworkID, Addr: a.Addr, Mac: a.MAC, Aliases: a.Aliases})
	}
	return out
}

// ToAttachments converts the messages.
func ToAttachments(in []*NetworkAttachment) []api.NetworkAttachment {
	var out []api.NetworkAttachment
	for _, a := range in {
		out = append(out, api.NetworkAttachment{NetworkID: a.GetNetworkId(), Addr: a.GetAddr(), MAC: a.GetMac(), Aliases: a.GetAliases()})
	}
	return out
}

// FromNetworkView converts an agent's network view to the message.
func FromNetworkView(v *api.NetworkView) *NetworkView {
	if v == nil {
		return nil
	}
	out := &NetworkView{Version: v.Version}
	for i := range v.Networks {
		out.Networks = append(out.Networks, FromNetwork(&v.Networks[i]))
	}
	for _, e := range v.Endpoints {
		out.Endpoints = append(out.Endpoints, &Endpoint{
			TaskId: e.TaskID, ServiceId: e.ServiceID, ServiceName: e.ServiceName, NodeId: e.NodeID,
			NodeAddr: e.NodeAddr, NetworkId: e.NetworkID, Addr: e.Addr, Mac: e.MAC, Aliases: e.Aliases, Running: e.Running,
		})
	}
	for _, s := range v.Services {
		r := &ServiceRoutes{
			ServiceId: s.ServiceID, Name: s.Name, Stack: s.Stack, ShortName: s.ShortName,
			EndpointMode: s.EndpointMode, Vips: fromVIPs(s.VIPs), Ports: fromPorts(s.Ports),
		}
		if len(s.Aliases) > 0 {
			r.Aliases = make(map[string]*Aliases, len(s.Aliases))
			for k, names := range s.Aliases {
				r.Aliases[k] = &Aliases{Names: names}
			}
		}
		out.Services = append(out.Services, r)
	}
	return out
}

// ToNetworkView converts the message to an agent's network view.
func ToNetworkView(v *NetworkView) *api.NetworkView {
	if v == nil {
		return nil
	}
	out := &api.NetworkView{Version: v.GetVersion()}
	for _, n := range v.GetNetworks() {
		out.Networks = append(out.Networks, *ToNetwork(n))
	}
	for _, e := range v.GetEndpoints() {
		out.Endpoints = append(out.Endpoints, api.Endpoint{
			TaskID: e.GetTaskId(), ServiceID: e.GetServiceId(), ServiceName: e.GetServiceName(), NodeID: e.GetNodeId(),
			NodeAddr: e.GetNodeAddr(), NetworkID: e.GetNetworkId(), Addr: e.GetAddr(), MAC: e.GetMac(),
			Aliases: e.GetAliases(), Running: e.GetRunning(),
		})
	}
	for _, s := range v.GetServices() {
		r := api.ServiceRoutes{
			ServiceID: s.GetServiceId(), Name: s.GetName(), Stack: s.GetStack(), ShortName: s.GetShortName(),
			EndpointMode: s.GetEndpointMode(), VIPs: toVIPs(s.GetVips()), Ports: toPorts(s.GetPorts()),
		}
		if len(s.GetAliases()) > 0 {
			r.Aliases = make(map[string][]string, len(s.GetAliases()))
			for k, a := range s.GetAliases() {
				r.Aliases[k] = slices.Clone(a.GetNames())
			}
		}
		out.Services = append(out.Services, r)
	}
	return out
}
