package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// One network on this host is a namespace holding a bridge (with the
// network's gateway address) and a VXLAN device. The VXLAN device is made
// in the agent host's namespace, so its UDP socket (port 4789, from the
// host's underlay address) lives there, and is then moved in. Learning is
// off: every remote endpoint has a static FDB entry (MAC → remote host)
// and a neighbour entry (IP → MAC) the device answers ARP from, so no
// broadcast ever crosses hosts.

const (
	vxlanPort   = 4789
	vxlanHeader = 50 // outer IPv4 + UDP + VXLAN + inner Ethernet
	bridgeName  = "br0"
)

func vxlanName(vni uint32) string { return fmt.Sprintf("vx%d", vni) }

// ensureOverlay makes the namespace of network p (or repairs it) and
// brings its FDB and neighbour entries to the plan: the missing ones are
// added, and with prune the extra ones removed. It returns how many
// entries it had to add or remove.
func (r *Reconciler) ensureOverlay(p *netPlan, prune bool) (int, error) {
	path := r.netPath(p.Net.ID)
	if err := createNetNS(path); err != nil {
		return 0, err
	}
	ns, err := openNetNS(path)
	if err != nil {
		return 0, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return 0, fmt.Errorf("netlink in network %s: %w", p.Net.ID, err)
	}
	defer h.Close()
	if err := linkUp(h, "lo"); err != nil {
		return 0, err
	}
	br, err := r.ensureBridge(h, bridgeName, p.Gateway)
	if err != nil {
		return 0, fmt.Errorf("network %s: %w", p.Net.ID, err)
	}
	vx, err := r.ensureVXLAN(h, ns, p.Net.VNI, br)
	if err != nil {
		return 0, fmt.Errorf("network %s: %w", p.Net.ID, err)
	}
	n, err := syncFDB(h, vx.Attrs().Index, p.FDB, prune)
	if err != nil {
		return n, fmt.Errorf("network %s: %w", p.Net.ID, err)
	}
	m, err := syncNeigh(h, vx.Attrs().Index, p.Neigh, prune)
	if err != nil {
		return n + m, fmt.Errorf("network %s: %w", p.Net.ID, err)
	}
	return n + m, nil
}

func linkUp(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("set %s up: %w", name, err)
		}
	}
	return nil
}

// ensureBridge makes (or repairs) a bridge with address addr (none when
// addr is not valid), at the overlay MTU.
func (r *Reconciler) ensureBridge(h *netlink.Handle, name string, addr netip.Prefix) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		la := netlink.NewLinkAttrs()
		la.Name, la.MTU = name, r.mtu
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
			return nil, fmt.Errorf("add bridge %s: %w", name, err)
		}
		l, err = h.LinkByName(name)
	}
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, err)
	}
	if addr.IsValid() {
		a := &netlink.Addr{IPNet: prefixNet(addr)}
		if err := h.AddrReplace(l, a); err != nil {
			return nil, fmt.Errorf("address %s on %s: %w", addr, name, err)
		}
	}
	if err := linkUp(h, name); err != nil {
		return nil, err
	}
	return l, nil
}

// ensureVXLAN makes the network's VXLAN device in the host namespace,
// moves it into ns and enslaves it to the bridge.
func (r *Reconciler) ensureVXLAN(h *netlink.Handle, ns netns.NsHandle, vni uint32, br netlink.Link) (netlink.Link, error) {
	name := vxlanName(vni)
	l, err := h.LinkByName(name)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		if err := r.makeVXLAN(name, vni, ns); err != nil {
			return nil, err
		}
		l, err = h.LinkByName(name)
	}
	if err != nil {
		return nil, fmt.Errorf("vxlan %s: %w", name, err)
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		if err := h.LinkSetMaster(l, br); err != nil {
			return nil, fmt.Errorf("enslave %s to %s: %w", name, br.Attrs().Name, err)
		}
	}
	if err := linkUp(h, name); err != nil {
		return nil, err
	}
	return l, nil
}

func (r *Reconciler) makeVXLAN(name string, vni uint32, ns netns.NsHandle) error {
	hh, err := netlink.NewHandleAt(r.hostNS)
	if err != nil {
		return fmt.Errorf("netlink in host netns: %w", err)
	}
	defer hh.Close()
	// A device left in the host namespace by an interrupted move.
	if old, err := hh.LinkByName(name); err == nil {
		_ = hh.LinkDel(old)
	}
	la := netlink.NewLinkAttrs()
	la.Name, la.MTU = name, r.mtu
	vx := &netlink.Vxlan{
		LinkAttrs: la, VxlanId: int(vni), SrcAddr: r.underlay.AsSlice(), Port: vxlanPort,
		VtepDevIndex: r.underlayIndex, Learning: false, Proxy: true,
	}
	if err := hh.LinkAdd(vx); err != nil {
		return fmt.Errorf("add vxlan %s (vni %d): %w", name, vni, err)
	}
	l, err := hh.LinkByName(name)
	if err == nil {
		err = hh.LinkSetNsFd(l, int(ns))
	}
	if err != nil {
		_ = hh.LinkDel(vx)
		return fmt.Errorf("move vxlan %s into its network namespace: %w", name, err)
	}
	return nil
}

// syncFDB makes the device's remote FDB entries exactly want (MAC → VTEP).
func syncFDB(h *netlink.Handle, idx int, want map[string]string, prune bool) (int, error) {
	list, err := h.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		return 0, fmt.Errorf("list fdb: %w", err)
	}
	have := map[string]string{}
	for _, e := range list {
		if e.IP != nil && e.HardwareAddr != nil && e.LinkIndex == idx {
			have[e.HardwareAddr.String()] = e.IP.String()
		}
	}
	add, del := diffMap(want, have)
	if !prune {
		del = nil
	}
	for _, mac := range del {
		if err := h.NeighDel(fdbEntry(idx, mac, have[mac])); err != nil && !errors.Is(err, unix.ENOENT) {
			return 0, fmt.Errorf("delete fdb %s: %w", mac, err)
		}
	}
	for mac, vtep := range add {
		if err := h.NeighSet(fdbEntry(idx, mac, vtep)); err != nil {
			return 0, fmt.Errorf("fdb %s dst %s: %w", mac, vtep, err)
		}
	}
	return len(add) + len(del), nil
}

func fdbEntry(idx int, mac, vtep string) *netlink.Neigh {
	hw, _ := net.ParseMAC(mac)
	return &netlink.Neigh{
		LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
		Flags: netlink.NTF_SELF, IP: net.ParseIP(vtep), HardwareAddr: hw,
	}
}

// syncNeigh makes the device's permanent neighbour entries exactly want
// (IP → MAC).
func syncNeigh(h *netlink.Handle, idx int, want map[string]string, prune bool) (int, error) {
	list, err := h.NeighList(idx, unix.AF_INET)
	if err != nil {
		return 0, fmt.Errorf("list neighbours: %w", err)
	}
	have := map[string]string{}
	for _, e := range list {
		if e.State&netlink.NUD_PERMANENT != 0 && e.HardwareAddr != nil {
			have[e.IP.String()] = e.HardwareAddr.String()
		}
	}
	add, del := diffMap(want, have)
	if !prune {
		del = nil
	}
	for _, ip := range del {
		n := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, IP: net.ParseIP(ip)}
		if err := h.NeighDel(n); err != nil && !errors.Is(err, unix.ENOENT) {
			return 0, fmt.Errorf("delete neighbour %s: %w", ip, err)
		}
	}
	for ip, mac := range add {
		hw, _ := net.ParseMAC(mac)
		n := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, State: netlink.NUD_PERMANENT, IP: net.ParseIP(ip), HardwareAddr: hw}
		if err := h.NeighSet(n); err != nil {
			return 0, fmt.Errorf("neighbour %s lladdr %s: %w", ip, mac, err)
		}
	}
	return len(add) + len(del), nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// safeName checks an ID used in a file or device name.
func safeName(id string) error {
	if id == "" || len(id) > 64 || strings.ContainsFunc(id, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.')
	}) || id == "." || id == ".." {
		return fmt.Errorf("%w: %q", ErrBadID, id)
	}
	return nil
}
