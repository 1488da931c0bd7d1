package api

import (
	"fmt"
	"net/netip"
)

// The rules of network attachment, in one place for the control API, the
// allocator, the dispatcher's network view and shoalctl's plans.

// PortProtocol returns p's protocol, tcp when unset.
func (p PortConfig) PortProtocol() string {
	if p.Protocol == "" {
		return ProtocolTCP
	}
	return p.Protocol
}

// Mode returns p's publish mode, ingress when unset.
func (p PortConfig) Mode() string {
	if p.PublishMode == "" {
		return PublishModeIngress
	}
	return p.PublishMode
}

// EndpointModeOf returns the spec's endpoint mode, vip when unset.
func EndpointModeOf(s *ServiceSpec) string {
	if s.Endpoint.Mode == "" {
		return EndpointModeVIP
	}
	return s.Endpoint.Mode
}

// PublishesIngress reports whether s publishes a port through the routing
// mesh: its tasks then join the ingress network.
func PublishesIngress(s *ServiceSpec) bool {
	for _, p := range s.Endpoint.Ports {
		if p.Mode() == PublishModeIngress {
			return true
		}
	}
	return false
}

// OverlayTargets returns the spec's network targets that are networks in
// the store (not host or none), in spec order.
func OverlayTargets(s *ServiceSpec) []NetworkAttachmentSpec {
	var out []NetworkAttachmentSpec
	for _, a := range s.Networks {
		if a.Target != NetworkHost && a.Target != NetworkNone {
			out = append(out, a)
		}
	}
	return out
}

// HostNetworked reports whether the tasks of s share their agent host's
// namespace: they name host, or name no network and publish nothing
// through the mesh (shoal's behaviour before networks, kept as default).
func HostNetworked(s *ServiceSpec) bool {
	for _, a := range s.Networks {
		if a.Target == NetworkHost {
			return true
		}
	}
	return len(OverlayTargets(s)) == 0 && !PublishesIngress(s) && !NoNetwork(s)
}

// NoNetwork reports whether s asked for --network none.
func NoNetwork(s *ServiceSpec) bool {
	for _, a := range s.Networks {
		if a.Target == NetworkNone {
			return true
		}
	}
	return false
}

// UsesNetwork reports whether s is on n (by name or ID, or through the
// mesh for the ingress network).
func UsesNetwork(s *ServiceSpec, n *Network) bool {
	if n.Ingress && PublishesIngress(s) {
		return true
	}
	for _, a := range s.Networks {
		if a.Target == n.ID || a.Target == n.Spec.Name {
			return true
		}
	}
	return false
}

// MACFromAddr derives a task's MAC from its IPv4 address (02:42 and the four
// bytes, as Docker does), so every host computes the same one.
func MACFromAddr(addr netip.Addr) string {
	b := addr.As4()
	return fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

// NeedsNetworks reports whether the tasks of s get addresses from the
// leader before they are scheduled: they name a network or publish
// through the mesh.
func NeedsNetworks(s *ServiceSpec) bool {
	return len(OverlayTargets(s)) > 0 || PublishesIngress(s)
}

// NetworkPendingPrefix starts the pending reason of a task the allocator
// holds back (e.g. "network allocation: no IP left in network …").
const NetworkPendingPrefix = "network allocation: "
