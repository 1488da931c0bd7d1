package network

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/shoal-sched/shoal/api"
)

// The pure half of the data plane: from a NetworkView and this host's
// sandboxes to the state the kernel should hold. Nothing here touches the
// kernel, so the rules are unit-tested on their own.

// Sandbox is what one local task asks of the data plane.
type Sandbox struct {
	TaskID string
	// Stack is the task's stack (its services' short names resolve).
	Stack string
	// None gives the task a namespace with loopback only.
	None        bool
	Attachments []api.NetworkAttachment
}

// netPlan is one network as this host should hold it.
type netPlan struct {
	Net     api.Network
	Gateway netip.Prefix // bridge address: gateway IP with the subnet's length
	// Remote is MAC → VTEP (the remote agent host's underlay IP) for every
	// endpoint on another host: the static FDB entries.
	FDB map[string]string
	// Neigh is IP → MAC for the same endpoints: the vxlan device answers
	// ARP from these (proxy), so no broadcast crosses hosts.
	Neigh map[string]string
}

// vipRule sends a VIP to its running backends.
type vipRule struct {
	VIP      netip.Addr
	Backends []netip.Addr // sorted; empty: the VIP refuses connections
}

// planNetworks returns the networks this host must hold: those its
// sandboxes are attached to, with the endpoints of other hosts. A network
// or an endpoint the view gets wrong is left out and reported in errs, so
// one bad entry never stops the rest of the data plane.
func planNetworks(v *api.NetworkView, sandboxes map[string]Sandbox, nodeID string) (plans map[string]*netPlan, errs []error) {
	byID := make(map[string]api.Network, len(v.Networks))
	for _, n := range v.Networks {
		byID[n.ID] = n
	}
	plans = make(map[string]*netPlan)
	for _, sb := range sandboxes {
		for _, a := range sb.Attachments {
			if plans[a.NetworkID] != nil {
				continue
			}
			n, ok := byID[a.NetworkID]
			if !ok {
				continue // not in the view yet: the next view brings it
			}
			gw, err := gatewayPrefix(n)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			plans[a.NetworkID] = &netPlan{Net: n, Gateway: gw, FDB: map[string]string{}, Neigh: map[string]string{}}
		}
	}
	for _, e := range v.Endpoints {
		p := plans[e.NetworkID]
		if p == nil || e.NodeID == nodeID || e.NodeAddr == "" {
			continue
		}
		ip, mac, vtep, err := parseEndpoint(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.FDB[mac.String()] = vtep.String()
		p.Neigh[ip.String()] = mac.String()
	}
	return plans, errs
}

func parseEndpoint(e api.Endpoint) (netip.Addr, net.HardwareAddr, netip.Addr, error) {
	ip, err := addrOf(e.Addr)
	if err != nil {
		return netip.Addr{}, nil, netip.Addr{}, fmt.Errorf("endpoint of task %s: %w", e.TaskID, err)
	}
	mac, err := net.ParseMAC(e.MAC)
	if err != nil || len(mac) != 6 {
		return netip.Addr{}, nil, netip.Addr{}, fmt.Errorf("endpoint of task %s: mac %q: want 6 bytes (%v)", e.TaskID, e.MAC, err)
	}
	vtep, err := netip.ParseAddr(e.NodeAddr)
	if err != nil || !vtep.Is4() {
		return netip.Addr{}, nil, netip.Addr{}, fmt.Errorf("endpoint of task %s: node_addr %q: want an IPv4 address", e.TaskID, e.NodeAddr)
	}
	return ip, mac, vtep, nil
}

// gatewayPrefix is the bridge's address: the gateway with the subnet's
// prefix length.
func gatewayPrefix(n api.Network) (netip.Prefix, error) {
	sub, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("network %s: subnet %q: %w", n.ID, n.Subnet, err)
	}
	gw, err := netip.ParseAddr(n.Gateway)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("network %s: gateway %q: %w", n.ID, n.Gateway, err)
	}
	return netip.PrefixFrom(gw, sub.Bits()), nil
}

// addrOf is the address of a CIDR-form attachment address.
func addrOf(cidr string) (netip.Addr, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("address %q: want CIDR form: %w", cidr, err)
	}
	return p.Addr(), nil
}

// runningBackends is, per network, each service's running task addresses.
func runningBackends(v *api.NetworkView) map[string]map[string][]netip.Addr {
	out := map[string]map[string][]netip.Addr{}
	for _, e := range v.Endpoints {
		if !e.Running {
			continue
		}
		ip, err := addrOf(e.Addr)
		if err != nil {
			continue
		}
		if out[e.NetworkID] == nil {
			out[e.NetworkID] = map[string][]netip.Addr{}
		}
		out[e.NetworkID][e.ServiceID] = append(out[e.NetworkID][e.ServiceID], ip)
	}
	for _, svcs := range out {
		for id, ips := range svcs {
			slices.SortFunc(ips, func(a, b netip.Addr) int { return a.Compare(b) })
			svcs[id] = slices.Compact(ips)
		}
	}
	return out
}

// planVIPs is the VIP rules of one sandbox: every VIP service on the
// networks the sandbox is on, to its running backends on that network.
func planVIPs(v *api.NetworkView, sb Sandbox, backends map[string]map[string][]netip.Addr) []vipRule {
	on := map[string]bool{}
	for _, a := range sb.Attachments {
		on[a.NetworkID] = true
	}
	var rules []vipRule
	for _, s := range v.Services {
		if s.EndpointMode == api.EndpointModeDNSRR {
			continue
		}
		for _, vip := range s.VIPs {
			if !on[vip.NetworkID] {
				continue
			}
			ip, err := addrOf(vip.Addr)
			if err != nil {
				continue
			}
			rules = append(rules, vipRule{VIP: ip, Backends: backends[vip.NetworkID][s.ServiceID]})
		}
	}
	slices.SortFunc(rules, func(a, b vipRule) int { return a.VIP.Compare(b.VIP) })
	return rules
}

// vipKey identifies a set of VIP rules, to tell whether a table must be
// rewritten.
func vipKey(rules []vipRule) string {
	var b strings.Builder
	for _, r := range rules {
		b.WriteString(r.VIP.String())
		b.WriteByte('>')
		for _, be := range r.Backends {
			b.WriteString(be.String())
			b.WriteByte(',')
		}
		b.WriteByte(';')
	}
	return b.String()
}

// diffMap compares what should be with what is: add holds the keys that
// are missing or hold another value, del the keys that should not be.
func diffMap(want, have map[string]string) (add map[string]string, del []string) {
	add = map[string]string{}
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			add[k] = v
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			del = append(del, k)
		}
	}
	slices.Sort(del)
	return add, del
}
