package network

import (
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/shoal-sched/shoal/api"
)

// records is what the embedded DNS owns, per network: a name (lower case,
// no trailing dot) to its addresses. A service's name, its aliases on the
// network and, inside its stack, its short compose name resolve to its VIP
// (or its running tasks' IPs in dnsrr mode); tasks.NAME to the running
// tasks' IPs; a task's own aliases to its IP.
type records struct {
	byNet map[string]map[string][]netip.Addr
	// short holds stack-local short names: stack → network → name.
	short map[string]map[string]map[string][]netip.Addr
}

func buildRecords(v *api.NetworkView) *records {
	rec := &records{byNet: map[string]map[string][]netip.Addr{}, short: map[string]map[string]map[string][]netip.Addr{}}
	backends := runningBackends(v)
	for _, s := range v.Services {
		nets := serviceNetworks(v, s)
		vips := map[string]netip.Addr{}
		for _, vip := range s.VIPs {
			if ip, err := addrOf(vip.Addr); err == nil {
				vips[vip.NetworkID] = ip
			}
		}
		for _, netID := range nets {
			tasks := backends[netID][s.ServiceID]
			target := tasks
			if ip, ok := vips[netID]; ok && s.EndpointMode != api.EndpointModeDNSRR {
				target = []netip.Addr{ip}
			}
			names := append([]string{s.Name}, s.Aliases[netID]...)
			for _, n := range names {
				rec.add(netID, n, target...)
				rec.add(netID, "tasks."+n, tasks...)
			}
			if s.Stack != "" && s.ShortName != "" {
				rec.addShort(s.Stack, netID, s.ShortName, target)
				rec.addShort(s.Stack, netID, "tasks."+s.ShortName, tasks)
			}
		}
	}
	for _, e := range v.Endpoints {
		ip, err := addrOf(e.Addr)
		if err != nil || !e.Running {
			continue
		}
		for _, a := range e.Aliases {
			rec.add(e.NetworkID, a, ip)
		}
	}
	return rec
}

// serviceNetworks lists the networks a service is reachable on: those of
// its VIPs and of its endpoints.
func serviceNetworks(v *api.NetworkView, s api.ServiceRoutes) []string {
	var nets []string
	for _, vip := range s.VIPs {
		nets = append(nets, vip.NetworkID)
	}
	for _, e := range v.Endpoints {
		if e.ServiceID == s.ServiceID {
			nets = append(nets, e.NetworkID)
		}
	}
	slices.Sort(nets)
	return slices.Compact(nets)
}

func normName(n string) string { return strings.ToLower(strings.TrimSuffix(n, ".")) }

func (rec *records) add(netID, name string, ips ...netip.Addr) {
	m := rec.byNet[netID]
	if m == nil {
		m = map[string][]netip.Addr{}
		rec.byNet[netID] = m
	}
	k := normName(name)
	m[k] = append(m[k], ips...)
	if m[k] == nil {
		m[k] = []netip.Addr{} // known, with no running task: answered empty
	}
}

func (rec *records) addShort(stack, netID, name string, ips []netip.Addr) {
	if rec.short[stack] == nil {
		rec.short[stack] = map[string]map[string][]netip.Addr{}
	}
	if rec.short[stack][netID] == nil {
		rec.short[stack][netID] = map[string][]netip.Addr{}
	}
	k := normName(name)
	rec.short[stack][netID][k] = append(rec.short[stack][netID][k], ips...)
}

// lookup answers name for a sandbox: only from the networks it is on. ok
// is false for a name the server does not own (it is forwarded).
func (rec *records) lookup(sb Sandbox, name string) ([]net.IP, bool) {
	k := normName(name)
	var found []netip.Addr
	ok := false
	for _, a := range sb.Attachments {
		if ips, hit := rec.byNet[a.NetworkID][k]; hit {
			found, ok = append(found, ips...), true
		}
		if sb.Stack == "" {
			continue
		}
		if ips, hit := rec.short[sb.Stack][a.NetworkID][k]; hit {
			found, ok = append(found, ips...), true
		}
	}
	slices.SortFunc(found, func(a, b netip.Addr) int { return a.Compare(b) })
	found = slices.Compact(found)
	out := make([]net.IP, len(found))
	for i, ip := range found {
		out[i] = ip.AsSlice()
	}
	return out, ok
}
