package network

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Every nft table the data plane writes is rewritten whole in one
// transaction (add, delete, add again: the delete never fails and the
// kernel swaps old for new atomically), so a table is always either the old
// rule set or the new one, and a table deleted by hand comes back whole.

// Names of the tables the data plane owns.
const (
	tableEgress  = "shoal_egress"  // host: masquerade of the sandboxes' egress
	tableVIP     = "shoal_vip"     // sandbox: VIP → backends
	tableIngress = "shoal_ingress" // host: published ports (the routing mesh)
)

// setIDs numbers the maps of a transaction. The library's own counter is a
// global without a lock, a race between two namespaces written at once;
// any ID unique within a transaction does.
var setIDs atomic.Uint32

func nextSetID() uint32 {
	for {
		if id := setIDs.Add(1); id != 0 {
			return id
		}
	}
}

// nftConn opens an nftables connection in ns.
func nftConn(ns netns.NsHandle) (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

// replaceTable starts a transaction that replaces table name with an empty
// one and returns it; build fills it and Flush commits.
func replaceTable(c *nftables.Conn, name string) *nftables.Table {
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: name}
	c.AddTable(t)
	c.DelTable(t)
	return c.AddTable(t)
}

// tableExists reports whether ns holds the IPv4 table name.
func tableExists(ns netns.NsHandle, name string) (bool, error) {
	c, err := nftConn(ns)
	if err != nil {
		return false, err
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, fmt.Errorf("list nft tables: %w", err)
	}
	for _, t := range ts {
		if t.Name == name {
			return true, nil
		}
	}
	return false, nil
}

// deleteTable removes table name from ns if it is there.
func deleteTable(ns netns.NsHandle, name string) error {
	ok, err := tableExists(ns, name)
	if err != nil || !ok {
		return err
	}
	c, err := nftConn(ns)
	if err != nil {
		return err
	}
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: name})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete nft table %s: %w", name, err)
	}
	return nil
}

func natChain(c *nftables.Conn, t *nftables.Table, name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
	return c.AddChain(&nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeNAT, Hooknum: hook, Priority: prio})
}

// matchAddr compares the IPv4 source (off 12) or destination (off 16) with p.
func matchPrefix(off uint32, p netip.Prefix) []expr.Any {
	a := p.Masked().Addr().As4()
	mask := netipMask(p.Bits())
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

func matchAddr(off uint32, ip netip.Addr) []expr.Any {
	a := ip.As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

func netipMask(bits int) []byte {
	m := make([]byte, 4)
	for i := 0; i < bits; i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// ifname is an interface name as nft compares it (NUL padded to IFNAMSIZ).
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

// matchL4 matches the transport protocol and destination port.
func matchL4(proto string, port uint16) []expr.Any {
	p := byte(unix.IPPROTO_TCP)
	if proto == "udp" {
		p = unix.IPPROTO_UDP
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

// balance picks one of backends at random (numgen over a map: random, not
// inc, since every client's table would start at the same backend) into register 1
// and DNATs to it, to port when port is not 0 (else the port is kept).
func balance(c *nftables.Conn, t *nftables.Table, mapName string, backends []netip.Addr, port uint16) ([]expr.Any, error) {
	m := &nftables.Set{Table: t, ID: nextSetID(), Name: mapName, IsMap: true, KeyType: nftables.TypeInteger, DataType: nftables.TypeIPAddr}
	elems := make([]nftables.SetElement, len(backends))
	for i, b := range backends {
		a := b.As4()
		elems[i] = nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(i)), Val: a[:]}
	}
	if err := c.AddSet(m, elems); err != nil {
		return nil, fmt.Errorf("nft map %s: %w", mapName, err)
	}
	ex := []expr.Any{
		&expr.Numgen{Register: 1, Modulus: uint32(len(backends)), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
	}
	nat := &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1}
	if port != 0 {
		ex = append(ex, &expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(port)})
		nat.RegProtoMin, nat.Specified = 2, true
	}
	return append(ex, nat), nil
}

// writeEgress masquerades what the sandboxes send out of the host through
// the gateway bridge.
func writeEgress(ns netns.NsHandle, subnet netip.Prefix, bridge string) error {
	c, err := nftConn(ns)
	if err != nil {
		return err
	}
	t := replaceTable(c, tableEgress)
	ch := natChain(c, t, "postrouting", nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	ex := matchPrefix(12, subnet)
	ex = append(ex,
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(bridge)},
		&expr.Masq{},
	)
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: ex})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write nft table %s: %w", tableEgress, err)
	}
	return nil
}

// writeVIPs writes a sandbox's VIP table: each VIP is DNATed to one of its
// running backends (the client's source address is kept); a VIP with none
// refuses at once instead of timing out.
func writeVIPs(ns netns.NsHandle, rules []vipRule) error {
	c, err := nftConn(ns)
	if err != nil {
		return err
	}
	t := replaceTable(c, tableVIP)
	out := natChain(c, t, "output", nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	filter := c.AddChain(&nftables.Chain{Name: "refuse", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter})
	for i, r := range rules {
		if len(r.Backends) > 0 {
			bal, err := balance(c, t, fmt.Sprintf("vip%d", i), r.Backends, 0)
			if err != nil {
				return err
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: append(matchAddr(16, r.VIP), bal...)})
		}
		// Reached only when no DNAT happened (the filter hook runs after it).
		c.AddRule(&nftables.Rule{Table: t, Chain: filter, Exprs: append(matchAddr(16, r.VIP),
			&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3})}) // port unreachable
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write nft table %s: %w", tableVIP, err)
	}
	return nil
}
