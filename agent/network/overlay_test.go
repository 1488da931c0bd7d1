package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/poll"
)

// echoServer serves TCP and UDP echo on addr inside the namespace at path
// until the test ends.
func echoServer(t testing.TB, path, addr string) {
	t.Helper()
	var lis net.Listener
	var pc net.PacketConn
	must(t, inNS(t, path, func() (err error) {
		if lis, err = net.Listen("tcp", addr); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", addr)
		return err
	}))
	t.Cleanup(func() { lis.Close(); pc.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
}

// udpEcho sends payload from inside the namespace at path to addr with
// the don't-fragment bit set and checks the echo.
func udpEcho(t testing.TB, path, addr string, payload []byte) error {
	var conn net.Conn
	if err := inNS(t, path, func() (err error) {
		conn, err = net.Dial("udp", addr)
		return err
	}); err != nil {
		return err
	}
	defer conn.Close()
	raw, err := conn.(*net.UDPConn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
	}); err != nil || serr != nil {
		return errors.Join(err, serr)
	}
	_ = conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := conn.Write(payload); err != nil {
		return err
	}
	buf := make([]byte, len(payload)+1)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	if !bytes.Equal(buf[:n], payload) {
		return fmt.Errorf("echo of %d bytes came back as %d different bytes", len(payload), n)
	}
	return nil
}

// tcpEcho connects from inside the namespace at path to addr and checks
// the echo of payload.
func tcpEcho(t testing.TB, path, addr string, payload []byte) error {
	var conn net.Conn
	if err := inNS(t, path, func() (err error) {
		conn, err = net.DialTimeout("tcp", addr, 500*time.Millisecond)
		return err
	}); err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write(payload); err != nil {
		return err
	}
	buf := make([]byte, len(payload))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return err
	}
	if !bytes.Equal(buf, payload) {
		return errors.New("tcp echo differs")
	}
	return nil
}

func runReconcilers(t testing.TB, th *testHosts, view *api.NetworkView) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{}, len(th.hosts))
	for _, h := range th.hosts {
		h.r.SetView(view)
		go func() { _ = h.r.Run(ctx); done <- struct{}{} }()
	}
	t.Cleanup(func() {
		cancel()
		for range th.hosts {
			<-done
		}
	})
}

func fdbEntries(t *testing.T, h *testHost, netID string) map[string]string {
	t.Helper()
	ns := mustOpen(t, h.r.netPath(netID))
	defer ns.Close()
	nh := mustHandle(t, ns)
	defer nh.Close()
	vx, err := nh.LinkByName(vxlanName(testNet.VNI))
	must(t, err)
	list, err := nh.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
	must(t, err)
	out := map[string]string{}
	for _, e := range list {
		if e.IP != nil {
			out[e.HardwareAddr.String()] = e.IP.String()
		}
	}
	return out
}

func TestOverlayAcrossHostsHealsAndCleansUp(t *testing.T) {
	th := newTestHosts(t, 2)
	h0, h1 := th.hosts[0], th.hosts[1]
	e0, e1 := endpoint(0, h0, "web", true), endpoint(1, h1, "web", true)
	view := &api.NetworkView{Version: 1, Networks: []api.Network{testNet}, Endpoints: []api.Endpoint{e0, e1}}
	runReconcilers(t, th, view)

	w0, err := h0.r.Attach(t.Context(), sandboxOf(e0))
	p0 := w0.NetNS
	must(t, err)
	w1, err := h1.r.Attach(t.Context(), sandboxOf(e1))
	p1 := w1.NetNS
	must(t, err)
	echoServer(t, p1, "10.77.0.11:7777")

	// A 1,400-byte datagram with DF set crosses: the MTU is right.
	payload := bytes.Repeat([]byte("x"), 1400)
	poll.Until(t, 10*time.Second, func() error { return udpEcho(t, p0, "10.77.0.11:7777", payload) })
	must(t, tcpEcho(t, p0, "10.77.0.11:7777", bytes.Repeat([]byte("y"), 64<<10)))
	assertMTU(t, p0, "eth0", 1450)

	// Delete the FDB entry for the remote endpoint by hand: the periodic
	// pass puts it back and traffic flows again.
	_, before := h0.r.Stats()
	ns := mustOpen(t, h0.r.netPath(testNet.ID))
	nh := mustHandle(t, ns)
	vx, err := nh.LinkByName(vxlanName(testNet.VNI))
	must(t, err)
	must(t, nh.NeighDel(fdbEntry(vx.Attrs().Index, e1.MAC, h1.ip.String())))
	nh.Close()
	ns.Close()
	poll.Until(t, 10*time.Second, func() error {
		if _, after := h0.r.Stats(); after == before {
			return errors.New("no repair yet")
		}
		if got := fdbEntries(t, h0, testNet.ID)[e1.MAC]; got != h1.ip.String() {
			return fmt.Errorf("fdb entry for %s is %q", e1.MAC, got)
		}
		return nil
	})
	poll.Until(t, 10*time.Second, func() error { return udpEcho(t, p0, "10.77.0.11:7777", payload) })

	// Release: the task's namespace and veths go; with no sandbox left the
	// network's namespace (bridge, VXLAN, FDB) goes too.
	must(t, h0.r.Release(e0.TaskID))
	poll.Until(t, 10*time.Second, func() error { return gone(h0, e0.TaskID) })
	must(t, h0.r.Remove())
	assertHostClean(t, h0)
}

func assertMTU(t *testing.T, path, name string, want int) {
	t.Helper()
	ns := mustOpen(t, path)
	defer ns.Close()
	h := mustHandle(t, ns)
	defer h.Close()
	l, err := h.LinkByName(name)
	must(t, err)
	if l.Attrs().MTU != want {
		t.Fatalf("%s MTU %d, want %d", name, l.Attrs().MTU, want)
	}
}

// gone checks that a released task left nothing: no namespace file, no
// host-side veth, no network namespace once no sandbox is on it.
func gone(h *testHost, taskID string) error {
	if _, err := os.Stat(h.r.TaskNetNS(taskID)); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("namespace file of %s still there (%v)", taskID, err)
	}
	if _, err := os.Stat(h.r.netPath(testNet.ID)); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("network namespace still there (%v)", err)
	}
	links, err := hostLinks(h)
	if err != nil {
		return err
	}
	if l, ok := links[peerName("g", taskID, 0)]; ok {
		return fmt.Errorf("host veth %s still there", l)
	}
	return nil
}

func hostLinks(h *testHost) (map[string]string, error) {
	ns, err := openNetNS(h.ns)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, err
	}
	defer nh.Close()
	links, err := nh.LinkList()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, l := range links {
		out[l.Attrs().Name] = l.Type()
	}
	return out, nil
}

// assertHostClean checks that Remove left the host as the test made it:
// lo and eth0, no nft table, no namespace file.
func assertHostClean(t *testing.T, h *testHost) {
	t.Helper()
	poll.Until(t, 10*time.Second, func() error {
		links, err := hostLinks(h)
		if err != nil {
			return err
		}
		delete(links, "lo")
		delete(links, "eth0")
		if len(links) > 0 {
			return fmt.Errorf("links left in the host namespace: %v", links)
		}
		return nil
	})
	ns := mustOpen(t, h.ns)
	defer ns.Close()
	for _, tbl := range []string{tableEgress, tableIngress} {
		ok, err := tableExists(ns, tbl)
		must(t, err)
		if ok {
			t.Errorf("nft table %s left", tbl)
		}
	}
	ents, err := os.ReadDir(h.r.cfg.Dir)
	must(t, err)
	if len(ents) > 0 {
		t.Errorf("namespace files left: %v", ents)
	}
}

func TestPruneRemovesTheNamespacesOfGoneTasks(t *testing.T) {
	th := newTestHosts(t, 1)
	h := th.hosts[0]
	e1, e2 := endpoint(1, h, "web", true), endpoint(2, h, "web", true)
	h.r.SetView(&api.NetworkView{Version: 1, Networks: []api.Network{testNet}, Endpoints: []api.Endpoint{e1, e2}})
	for _, e := range []api.Endpoint{e1, e2} {
		_, err := h.r.Attach(t.Context(), sandboxOf(e))
		must(t, err)
	}
	must(t, h.r.Prune(map[string]bool{e1.TaskID: true}))
	if !isNetNS(h.r.TaskNetNS(e1.TaskID)) {
		t.Fatal("the kept task's namespace was removed")
	}
	if _, err := os.Stat(h.r.TaskNetNS(e2.TaskID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the gone task's namespace is still there (%v)", err)
	}
}

func TestNoneAndInternalSandboxes(t *testing.T) {
	th := newTestHosts(t, 1)
	h := th.hosts[0]
	internal := testNet
	internal.Spec.Internal = true
	e := endpoint(1, h, "db", true)
	h.r.SetView(&api.NetworkView{Version: 1, Networks: []api.Network{internal}, Endpoints: []api.Endpoint{e}})

	none, err := h.r.Attach(t.Context(), Sandbox{TaskID: "lonely", None: true})
	must(t, err)
	onInternal, err := h.r.Attach(t.Context(), sandboxOf(e))
	must(t, err)
	for _, c := range []struct {
		path string
		want []string
	}{{none.NetNS, []string{"lo"}}, {onInternal.NetNS, []string{"eth0", "lo"}}} {
		ns := mustOpen(t, c.path)
		nh := mustHandle(t, ns)
		links, err := nh.LinkList()
		must(t, err)
		var names []string
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		nh.Close()
		ns.Close()
		slices.Sort(names)
		if !slices.Equal(names, c.want) {
			t.Errorf("%s has links %v, want %v (none: loopback only; internal: no egress)", c.path, names, c.want)
		}
	}
	if b, err := os.ReadFile(none.ResolvConf); err != nil || len(b) != 0 {
		t.Errorf("a task on none gets an empty resolv.conf, got %q (%v)", b, err)
	}
}
