package network

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/shoal-sched/shoal/api"
)

// Published ports. The routing mesh rides on the underlay: the agent host
// a client reaches picks one of the service's running replicas (numgen)
// and DNATs to it: a local replica at its gateway-bridge address and
// target port, a remote one at its host's underlay address and the
// published port, masqueraded so the reply comes back the same way. The
// packets of that second hop carry a mark in the TOS byte, and a host
// sends a marked packet only to a replica of its own, so a connection
// makes at most one hop between hosts and never loops. A port in host mode
// goes straight to a local replica, with the client's address kept.

const (
	meshTOS  = 0x74   // the TOS byte of a mesh hop (DSCP 29, no ECN)
	meshMark = 0x5348 // ct mark of connections the mesh DNATed
)

// target is where one replica of a published port is reached.
type target struct {
	Addr netip.Addr
	Port uint16
}

// portRule is one published port on this host.
type portRule struct {
	Proto     string
	Port      uint16
	Mesh      []target // every running replica (ingress mode)
	Local     []target // the replicas on this host
	HostMode  bool
	serviceID string
}

// planPorts computes the published ports of this host from the view and
// the gateway-bridge addresses of its sandboxes.
func planPorts(v *api.NetworkView, nodeID string, egress map[string]netip.Addr) []portRule {
	ingress := map[string]bool{}
	for _, n := range v.Networks {
		ingress[n.ID] = n.Ingress
	}
	var rules []portRule
	for _, s := range v.Services {
		for _, p := range s.Ports {
			if p.PublishedPort == 0 {
				continue
			}
			r := portRule{Proto: cmpOr(p.Protocol, api.ProtocolTCP), Port: p.PublishedPort,
				HostMode: p.PublishMode == api.PublishModeHost, serviceID: s.ServiceID}
			seen := map[string]bool{}
			for _, e := range v.Endpoints {
				if e.ServiceID != s.ServiceID || !e.Running || seen[e.TaskID] || (!r.HostMode && !ingress[e.NetworkID]) {
					continue
				}
				seen[e.TaskID] = true
				if e.NodeID == nodeID {
					if ip, ok := egress[e.TaskID]; ok && ip.IsValid() {
						r.Local = append(r.Local, target{ip, p.TargetPort})
						r.Mesh = append(r.Mesh, target{ip, p.TargetPort})
					}
					continue
				}
				if ip, err := netip.ParseAddr(e.NodeAddr); err == nil && !r.HostMode {
					r.Mesh = append(r.Mesh, target{ip, p.PublishedPort})
				}
			}
			sortTargets(r.Local)
			sortTargets(r.Mesh)
			rules = append(rules, r)
		}
	}
	slices.SortFunc(rules, func(a, b portRule) int {
		return strings.Compare(fmt.Sprintf("%s/%05d", a.Proto, a.Port), fmt.Sprintf("%s/%05d", b.Proto, b.Port))
	})
	return rules
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func sortTargets(ts []target) {
	slices.SortFunc(ts, func(a, b target) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
}

func portsKey(rules []portRule) string { return fmt.Sprint(rules) }

// ensurePorts writes the published ports of the host (the routing mesh),
// when they changed or the table is gone; no ports, no table.
func (r *Reconciler) ensurePorts(view *api.NetworkView) error {
	r.mu.Lock()
	egress := make(map[string]netip.Addr, len(r.sandboxes))
	for id, st := range r.sandboxes {
		egress[id] = st.egress
	}
	r.mu.Unlock()
	rules := planPorts(view, r.cfg.NodeID, egress)
	if len(rules) == 0 {
		r.portsKey = ""
		return deleteTable(r.hostNS, tableIngress)
	}
	key := portsKey(rules)
	if key == r.portsKey {
		if ok, err := tableExists(r.hostNS, tableIngress); err != nil || ok {
			return err
		}
	}
	if err := setSysctl(r.hostNS, "net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	if err := writePorts(r.hostNS, rules, r.cfg.GatewayBridge); err != nil {
		return err
	}
	r.portsKey = key
	return nil
}

// writePorts writes the host's table of published ports.
func writePorts(ns netns.NsHandle, rules []portRule, gwBridge string) error {
	c, err := nftConn(ns)
	if err != nil {
		return err
	}
	t := replaceTable(c, tableIngress)
	pre := natChain(c, t, "prerouting", nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	post := natChain(c, t, "postrouting", nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	mark := c.AddChain(&nftables.Chain{Name: "mark", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityMangle})
	for i, pr := range rules {
		l4 := matchL4(pr.Proto, pr.Port)
		local, err := dnatTo(c, t, fmt.Sprintf("local%d", i), pr.Local)
		if err != nil {
			return err
		}
		if pr.HostMode {
			if local != nil {
				c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: cat(l4, local)})
			}
			continue
		}
		// A mesh hop from another host: a local replica, or nothing.
		hop := cat(matchTOS(), l4)
		if local != nil {
			c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: cat(hop, local)})
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: cat(hop, []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}})})
		mesh, err := dnatTo(c, t, fmt.Sprintf("mesh%d", i), pr.Mesh)
		if err != nil {
			return err
		}
		if mesh != nil {
			c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: cat(l4, setCtMark(), mesh)})
		}
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: cat(matchCtMark(), []expr.Any{&expr.Masq{}})})
	// Mark the hop to another host (not the packets to a local replica).
	c.AddRule(&nftables.Rule{Table: t, Chain: mark, Exprs: cat(matchCtMark(), []expr.Any{
		&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}}, // original: not the replies
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(gwBridge)},
		// Rewritten as the first 16-bit word (version, IHL and TOS) so the
		// checksum update is aligned, as nft's own "ip dscp set" does.
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 0, Len: 2},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 2, Mask: []byte{0xff, 0x00}, Xor: []byte{0x00, meshTOS}},
		&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseNetworkHeader,
			Offset: 0, Len: 2, CsumType: expr.CsumTypeInet, CsumOffset: 10},
	})})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write nft table %s: %w", tableIngress, err)
	}
	return nil
}

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func matchTOS() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 1, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{meshTOS}},
	}
}

func setCtMark() []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(meshMark)},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
	}
}

func matchCtMark() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(meshMark)},
	}
}

// dnatTo balances over targets (address and port each) with a numgen map;
// nil when there is none.
func dnatTo(c *nftables.Conn, t *nftables.Table, name string, ts []target) ([]expr.Any, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	dt, err := nftables.ConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
	if err != nil {
		return nil, err
	}
	m := &nftables.Set{Table: t, ID: nextSetID(), Name: name, IsMap: true, KeyType: nftables.TypeInteger, DataType: dt}
	elems := make([]nftables.SetElement, len(ts))
	for i, tg := range ts {
		a := tg.Addr.As4()
		val := append(a[:], binaryutil.BigEndian.PutUint16(tg.Port)...)
		elems[i] = nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(i)), Val: append(val, 0, 0)}
	}
	if err := c.AddSet(m, elems); err != nil {
		return nil, fmt.Errorf("nft map %s: %w", name, err)
	}
	return []expr.Any{
		&expr.Numgen{Register: 1, Modulus: uint32(len(ts)), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 9, Specified: true},
	}, nil
}
