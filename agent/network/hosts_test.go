package network

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/shoal-sched/shoal/api"
)

// testHosts is a small underlay made by the test: a namespace holding a
// bridge, and "agent hosts" that are namespaces wired to it by veths, each
// with its own Reconciler. Everything lives under a temp dir and is removed
// by the test's cleanup.
type testHosts struct {
	t      testing.TB
	dir    string
	bridge string
	hosts  []*testHost
}

type testHost struct {
	name string
	ns   string // namespace file
	ip   netip.Addr
	r    *Reconciler
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test makes network namespaces, bridges, VXLAN devices and nft tables: run it as root")
	}
}

func newTestHosts(t testing.TB, n int) *testHosts {
	t.Helper()
	requireRoot(t)
	th := &testHosts{t: t, dir: t.TempDir()}
	th.bridge = filepath.Join(th.dir, "underlay")
	if err := createNetNS(th.bridge); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = deleteNetNS(th.bridge) })
	bns := mustOpen(t, th.bridge)
	defer bns.Close()
	bh := mustHandle(t, bns)
	defer bh.Close()
	la := netlink.NewLinkAttrs()
	la.Name = "br0"
	if err := bh.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
		t.Fatal(err)
	}
	must(t, linkUp(bh, "br0"))
	for i := range n {
		th.hosts = append(th.hosts, th.addHost(bns, bh, i))
	}
	return th
}

func (th *testHosts) addHost(bns netns.NsHandle, bh *netlink.Handle, i int) *testHost {
	t := th.t
	h := &testHost{name: fmt.Sprintf("host%d", i), ip: netip.AddrFrom4([4]byte{192, 168, 77, byte(10 + i)})}
	h.ns = filepath.Join(th.dir, h.name)
	must(t, createNetNS(h.ns))
	t.Cleanup(func() { _ = deleteNetNS(h.ns) })
	hns := mustOpen(t, h.ns)
	defer hns.Close()
	hh := mustHandle(t, hns)
	defer hh.Close()
	la := netlink.NewLinkAttrs()
	la.Name, la.MTU = "eth0", 1500
	peer := fmt.Sprintf("u%d", i)
	must(t, hh.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: peer, PeerNamespace: netlink.NsFd(int(bns))}))
	must(t, enslavePeer(bns, peer, "br0"))
	eth, err := hh.LinkByName("eth0")
	must(t, err)
	must(t, hh.AddrAdd(eth, &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(h.ip, 24))}))
	must(t, linkUp(hh, "eth0"))
	must(t, linkUp(hh, "lo"))
	r, err := New(Config{
		Dir: filepath.Join(th.dir, h.name+"-netns"), NodeID: "node" + fmt.Sprint(i), HostNS: h.ns,
		UnderlayIP: h.ip, Resync: 100 * time.Millisecond,
		// Never the machine's resolvers: a test's traffic stays inside
		// its namespaces.
		Resolvers: []string{testUpstream},
	})
	must(t, err)
	h.r = r
	t.Cleanup(func() {
		if err := r.Remove(); err != nil {
			t.Errorf("remove data plane of %s: %v", h.name, err)
		}
		r.Close()
	})
	return h
}

func mustOpen(t testing.TB, path string) netns.NsHandle {
	t.Helper()
	ns, err := openNetNS(path)
	must(t, err)
	return ns
}

func mustHandle(t testing.TB, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	must(t, err)
	return h
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testUpstream is where the hosts' embedded DNS forwards: host0's
// underlay address (a test that needs an answer serves there).
const testUpstream = "192.168.77.10:5353"

// testNet is a network and endpoints for hand-built views.
var testNet = api.Network{ID: "n1", Spec: api.NetworkSpec{Name: "front", Driver: api.NetworkDriverOverlay},
	Subnet: "10.77.0.0/24", Gateway: "10.77.0.1", VNI: 4242}

// endpoint is task i's endpoint on testNet, on host h (address 10.77.0.(10+i)).
func endpoint(i int, h *testHost, svc string, running bool) api.Endpoint {
	ip := netip.AddrFrom4([4]byte{10, 77, 0, byte(10 + i)})
	a := ip.As4()
	return api.Endpoint{
		TaskID: fmt.Sprintf("task%d", i), ServiceID: svc, ServiceName: svc, NodeID: h.r.cfg.NodeID,
		NodeAddr: h.ip.String(), NetworkID: testNet.ID, Addr: ip.String() + "/24",
		MAC: net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}.String(), Running: running,
	}
}

func sandboxOf(e api.Endpoint) Sandbox {
	return Sandbox{TaskID: e.TaskID, Attachments: []api.NetworkAttachment{{NetworkID: e.NetworkID, Addr: e.Addr, MAC: e.MAC}}}
}

// inNS runs fn inside the namespace at path (sockets opened there stay
// there).
func inNS(t testing.TB, path string, fn func() error) error {
	t.Helper()
	ns := mustOpen(t, path)
	defer ns.Close()
	return inNetNS(ns, fn)
}
