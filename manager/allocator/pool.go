// Package allocator is the leader duty that gives networks their subnets
// and VNIs, services their virtual IPs and published ports, and tasks their
// addresses (and MACs), before a task is scheduled. Everything it hands out
// is committed through Raft (raftstore.AllocateNetworks) and it keeps no
// state of its own: each pass rebuilds what is in use from the store, so a
// new leader continues exactly where the old one stopped, and a choice is
// a pure function of the state (lowest free address, lowest free port).
package allocator

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/shoal-sched/shoal/api"
)

// The address plan. The default pool and the ingress subnet are chosen so
// that they cannot meet the lab's underlay (10.213.7.0/24) or Docker's
// usual 172.16/12 and 192.168/16.
var (
	// DefaultPool is where networks created without --subnet get a /24.
	DefaultPool = netip.MustParsePrefix("10.10.0.0/16")
	// DefaultSubnetBits is the prefix length of a pool subnet.
	DefaultSubnetBits = 24
	// IngressSubnet is the routing mesh's network, outside the pool.
	IngressSubnet = netip.MustParsePrefix("10.255.0.0/16")
)

// VNIs are taken from FirstVNI up (Swarm's range starts at 4096 as well).
const (
	FirstVNI = 4096
	LastVNI  = 1<<24 - 1
)

// Errors of allocation (wrapped with the network or range named).
var (
	ErrPoolExhausted = errors.New("address pool exhausted")
	ErrNoIPLeft      = errors.New("no IP left")
	ErrNoPortLeft    = errors.New("no published port left")
)

// PickSubnet returns the first /24 of the default pool that overlaps no
// existing network.
func PickSubnet(networks []*api.Network) (netip.Prefix, error) {
	taken := subnets(networks)
	size := uint32(1) << (32 - DefaultSubnetBits)
	base := u32(DefaultPool.Addr())
	count := uint32(1) << (DefaultSubnetBits - DefaultPool.Bits())
	for i := range count {
		p := netip.PrefixFrom(addr(base+i*size), DefaultSubnetBits)
		if !overlapsAny(p, taken) {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("default pool %s: every /%d is taken by a network: %w", DefaultPool, DefaultSubnetBits, ErrPoolExhausted)
}

// PickVNI returns the lowest VNI from FirstVNI that no network has.
func PickVNI(networks []*api.Network) (uint32, error) {
	used := make(map[uint32]bool, len(networks))
	for _, n := range networks {
		used[n.VNI] = true
	}
	for v := uint32(FirstVNI); v <= LastVNI; v++ {
		if !used[v] {
			return v, nil
		}
	}
	return 0, fmt.Errorf("VNIs %d-%d: all taken: %w", FirstVNI, LastVNI, ErrPoolExhausted)
}

// Gateway is the first address of a subnet: the host-side bridge address.
func Gateway(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// Overlap returns the first network whose subnet overlaps p, or nil.
func Overlap(p netip.Prefix, networks []*api.Network) *api.Network {
	for _, n := range networks {
		if q, err := netip.ParsePrefix(n.Subnet); err == nil && q.Overlaps(p) {
			return n
		}
	}
	return nil
}

func subnets(networks []*api.Network) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range networks {
		if p, err := netip.ParsePrefix(n.Subnet); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func overlapsAny(p netip.Prefix, taken []netip.Prefix) bool {
	return slices.ContainsFunc(taken, p.Overlaps)
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// ipPool hands out the addresses of one network, lowest free first. The
// network address, the gateway and the broadcast address are never given.
type ipPool struct {
	net  *api.Network
	pfx  netip.Prefix
	used map[netip.Addr]bool
	next uint32 // no free address below it
}

func newIPPool(n *api.Network) (*ipPool, error) {
	p, err := netip.ParsePrefix(n.Subnet)
	if err != nil || !p.Addr().Is4() {
		return nil, fmt.Errorf("network %q: subnet %q: not an IPv4 CIDR", n.Spec.Name, n.Subnet)
	}
	p = p.Masked()
	pool := &ipPool{net: n, pfx: p, used: map[netip.Addr]bool{}, next: u32(p.Addr()) + 2}
	pool.used[Gateway(p)] = true
	return pool, nil
}

// take marks an address (CIDR form) in use; false if it already was.
func (p *ipPool) take(cidr string) bool {
	a, err := netip.ParsePrefix(cidr)
	if err != nil || !p.pfx.Contains(a.Addr()) || p.used[a.Addr()] {
		return false
	}
	p.used[a.Addr()] = true
	return true
}

// get returns the lowest free address in CIDR form.
func (p *ipPool) get() (string, netip.Addr, error) {
	last := u32(p.pfx.Addr()) | (1<<(32-p.pfx.Bits()) - 1) // broadcast
	for v := p.next; v < last; v++ {
		a := addr(v)
		if !p.used[a] {
			p.used[a], p.next = true, v+1
			return netip.PrefixFrom(a, p.pfx.Bits()).String(), a, nil
		}
	}
	return "", netip.Addr{}, fmt.Errorf("%w in network %q (%s)", ErrNoIPLeft, p.net.Spec.Name, p.pfx)
}

func parseAddr(cidr string) (netip.Addr, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Addr{}, err
	}
	return p.Addr(), nil
}
