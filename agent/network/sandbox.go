package network

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// A sandbox is a container's network namespace: loopback, one veth into
// the bridge of each of its networks (eth0, eth1, … with the task's address
// and MAC there) and, unless all its networks are internal, a veth (gw0)
// into the host's gateway bridge with a host-local address and the default
// route, masqueraded on the way out.

const gwIface = "gw0"

// peerName is the host-side name of a sandbox's veth: short (IFNAMSIZ) and
// derived from the task, so a repair finds the same device.
func peerName(prefix, taskID string, i int) string {
	h := fnv.New32a()
	h.Write([]byte(taskID))
	return fmt.Sprintf("%s%08x%d", prefix, h.Sum32(), i)
}

// ensureSandbox makes (or repairs) the namespace of sb. plans holds its
// networks; egress is its gateway-bridge address (invalid: no egress).
func (r *Reconciler) ensureSandbox(sb Sandbox, plans map[string]*netPlan, egress netip.Addr) error {
	path := r.taskPath(sb.TaskID)
	if err := createNetNS(path); err != nil {
		return err
	}
	ns, err := openNetNS(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in sandbox of task %s: %w", sb.TaskID, err)
	}
	defer h.Close()
	if err := linkUp(h, "lo"); err != nil {
		return err
	}
	for i, a := range sb.Attachments {
		p := plans[a.NetworkID]
		if p == nil {
			return fmt.Errorf("task %s: network %s: %w", sb.TaskID, a.NetworkID, ErrUnknownNetwork)
		}
		if err := r.ensureEndpoint(h, sb.TaskID, i, a.Addr, a.MAC, p); err != nil {
			return fmt.Errorf("task %s on network %s: %w", sb.TaskID, a.NetworkID, err)
		}
	}
	if egress.IsValid() {
		if err := r.ensureEgress(h, sb.TaskID, egress); err != nil {
			return fmt.Errorf("task %s egress: %w", sb.TaskID, err)
		}
	}
	return nil
}

// ensureEndpoint wires interface eth<i> of a sandbox into network p.
func (r *Reconciler) ensureEndpoint(h *netlink.Handle, taskID string, i int, cidr, mac string, p *netPlan) error {
	name := fmt.Sprintf("eth%d", i)
	addr, err := netip.ParsePrefix(cidr)
	if err != nil {
		return fmt.Errorf("address %q: %w", cidr, err)
	}
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return fmt.Errorf("mac %q: %w", mac, err)
	}
	if _, err := h.LinkByName(name); err != nil {
		nns, err := openNetNS(r.netPath(p.Net.ID))
		if err != nil {
			return err
		}
		defer nns.Close()
		peer := peerName("v", taskID, i)
		if err := r.addVeth(h, name, hw, peer, nns); err != nil {
			return err
		}
		if err := enslavePeer(nns, peer, bridgeName); err != nil {
			return err
		}
	}
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := h.AddrReplace(l, &netlink.Addr{IPNet: prefixNet(addr)}); err != nil {
		return fmt.Errorf("address %s on %s: %w", addr, name, err)
	}
	return linkUp(h, name)
}

// addVeth creates a veth pair in the sandbox (name, with MAC hw) whose
// peer goes to namespace peerNS.
func (r *Reconciler) addVeth(h *netlink.Handle, name string, hw net.HardwareAddr, peer string, peerNS netns.NsHandle) error {
	la := netlink.NewLinkAttrs()
	la.Name, la.MTU, la.HardwareAddr = name, r.mtu, hw
	v := &netlink.Veth{LinkAttrs: la, PeerName: peer, PeerNamespace: netlink.NsFd(int(peerNS)), PeerMTU: uint32(r.mtu)}
	if err := h.LinkAdd(v); err != nil {
		return fmt.Errorf("add veth %s/%s: %w", name, peer, err)
	}
	return nil
}

// enslavePeer puts the host end of a veth on a bridge and brings it up.
func enslavePeer(ns netns.NsHandle, peer, bridge string) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	br, err := h.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", bridge, err)
	}
	l, err := h.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("veth %s: %w", peer, err)
	}
	if err := h.LinkSetMaster(l, br); err != nil {
		return fmt.Errorf("enslave %s to %s: %w", peer, bridge, err)
	}
	return h.LinkSetUp(l)
}

// ensureEgress wires gw0 into the host's gateway bridge with address ip
// and the default route through the bridge.
func (r *Reconciler) ensureEgress(h *netlink.Handle, taskID string, ip netip.Addr) error {
	if _, err := h.LinkByName(gwIface); err != nil {
		peer := peerName("g", taskID, 0)
		if err := r.addVeth(h, gwIface, nil, peer, r.hostNS); err != nil {
			return err
		}
		if err := enslavePeer(r.hostNS, peer, r.cfg.GatewayBridge); err != nil {
			return err
		}
	}
	l, err := h.LinkByName(gwIface)
	if err != nil {
		return fmt.Errorf("link %s: %w", gwIface, err)
	}
	p := netip.PrefixFrom(ip, r.gwSubnet.Bits())
	if err := h.AddrReplace(l, &netlink.Addr{IPNet: prefixNet(p)}); err != nil {
		return fmt.Errorf("address %s on %s: %w", p, gwIface, err)
	}
	if err := linkUp(h, gwIface); err != nil {
		return err
	}
	route := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: r.gwAddr.AsSlice()}
	if err := h.RouteReplace(route); err != nil {
		return fmt.Errorf("default route via %s: %w", r.gwAddr, err)
	}
	return nil
}

// ensureGateway makes the host's gateway bridge, turns on forwarding and
// writes the masquerade table.
func (r *Reconciler) ensureGateway() error {
	h, err := netlink.NewHandleAt(r.hostNS)
	if err != nil {
		return fmt.Errorf("netlink in host netns: %w", err)
	}
	defer h.Close()
	if _, err := r.ensureBridge(h, r.cfg.GatewayBridge, netip.PrefixFrom(r.gwAddr, r.gwSubnet.Bits())); err != nil {
		return fmt.Errorf("gateway bridge: %w", err)
	}
	if err := setSysctl(r.hostNS, "net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	ok, err := tableExists(r.hostNS, tableEgress)
	if err != nil || ok {
		return err
	}
	return writeEgress(r.hostNS, r.gwSubnet, r.cfg.GatewayBridge)
}

// sandboxEgressAddr reads the gateway-bridge address of an existing
// sandbox (after an agent restart), or an invalid address.
func sandboxEgressAddr(path string) netip.Addr {
	ns, err := openNetNS(path)
	if err != nil {
		return netip.Addr{}
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return netip.Addr{}
	}
	defer h.Close()
	l, err := h.LinkByName(gwIface)
	if err != nil {
		return netip.Addr{}
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(addrs[0].IP.To4())
	return a
}

var errNoAddr = errors.New("no address left")
