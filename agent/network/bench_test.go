package network

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/poll"
)

// benchLab is a client sandbox on host0, one replica of a VIP service on
// host1 publishing 8080 through the mesh, and an outside client on host2's
// own namespace (the underlay).
type benchLab struct {
	client, outside string // namespace paths
	replica, vip    string // addresses without port
	h0, h1          *testHost
}

func newBenchLab(b *testing.B) *benchLab {
	th := newTestHosts(b, 3)
	h0, h1, h2 := th.hosts[0], th.hosts[1], th.hosts[2]
	net0 := testNet
	net0.Ingress = true
	c, r := endpoint(0, h0, "client", true), endpoint(1, h1, "back", true)
	view := &api.NetworkView{Version: 1, Networks: []api.Network{net0}, Endpoints: []api.Endpoint{c, r},
		Services: []api.ServiceRoutes{{ServiceID: "back", Name: "back", EndpointMode: api.EndpointModeVIP,
			VIPs:  []api.VIP{{NetworkID: net0.ID, Addr: "10.77.0.2/24"}},
			Ports: []api.PortConfig{{Protocol: api.ProtocolTCP, TargetPort: 80, PublishedPort: 8080, PublishMode: api.PublishModeIngress}}}}}
	runReconcilers(b, &testHosts{t: b, hosts: th.hosts[:2]}, view)
	wc, err := h0.r.Attach(b.Context(), sandboxOf(c))
	must(b, err)
	wr, err := h1.r.Attach(b.Context(), sandboxOf(r))
	must(b, err)
	whoServer(b, wr.NetNS, ":80", "back")
	echoServer(b, wr.NetNS, ":7777")
	l := &benchLab{client: wc.NetNS, outside: h2.ns, replica: "10.77.0.11", vip: "10.77.0.2", h0: h0, h1: h1}
	for _, probe := range []struct{ ns, addr string }{
		{l.client, l.replica + ":80"}, {l.client, l.vip + ":80"},
		{l.outside, h0.ip.String() + ":8080"}, {l.outside, h1.ip.String() + ":8080"},
	} {
		poll.Until(b, 10*time.Second, func() error { _, err := ask(b, probe.ns, probe.addr); return err })
	}
	return l
}

// BenchmarkConnect measures one connection (connect, answer, close) per
// op: directly to the replica, through the VIP, and through the mesh from
// outside, at the replica's host and at another host. conns/s is 1/op.
func BenchmarkConnect(b *testing.B) {
	l := newBenchLab(b)
	for _, c := range []struct{ name, ns, addr string }{
		{"direct", l.client, l.replica + ":80"},
		{"vip", l.client, l.vip + ":80"},
		{"mesh-local", l.outside, l.h1.ip.String() + ":8080"},
		{"mesh-hop", l.outside, l.h0.ip.String() + ":8080"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := ask(b, c.ns, c.addr); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
		})
	}
}

// BenchmarkRoundTrip measures the latency of a 64-byte echo on an open
// connection, directly and through the VIP (DNAT costs the first packet
// only; the others follow the conntrack entry).
func BenchmarkRoundTrip(b *testing.B) {
	l := newBenchLab(b)
	for _, c := range []struct{ name, addr string }{
		{"direct", l.replica + ":7777"},
		{"vip", l.vip + ":7777"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var conn net.Conn
			must(b, inNS(b, l.client, func() (err error) {
				conn, err = net.Dial("tcp", c.addr)
				return err
			}))
			defer conn.Close()
			buf := make([]byte, 64)
			for b.Loop() {
				if _, err := conn.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(conn, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVIPFollowsReplacement measures, per op, the time from a view
// in which the service's running replica changed (a replacement runs) to
// the first connection through the VIP that reaches the new one. The two
// replicas take turns; both live on the other host.
func BenchmarkVIPFollowsReplacement(b *testing.B) {
	th := newTestHosts(b, 2)
	h0, h1 := th.hosts[0], th.hosts[1]
	c := endpoint(0, h0, "client", true)
	r1, r2 := endpoint(1, h1, "back", true), endpoint(2, h1, "back", true)
	view := func(version uint64, backend api.Endpoint) *api.NetworkView {
		return &api.NetworkView{Version: version, Networks: []api.Network{testNet}, Endpoints: []api.Endpoint{c, backend},
			Services: []api.ServiceRoutes{{ServiceID: "back", Name: "back", EndpointMode: api.EndpointModeVIP,
				VIPs: []api.VIP{{NetworkID: testNet.ID, Addr: "10.77.0.2/24"}}}}}
	}
	runReconcilers(b, th, view(1, r1))
	wc, err := h0.r.Attach(b.Context(), sandboxOf(c))
	must(b, err)
	for _, r := range []api.Endpoint{r1, r2} {
		w, err := h1.r.Attach(b.Context(), sandboxOf(r))
		must(b, err)
		whoServer(b, w.NetNS, ":80", r.TaskID)
	}
	version := uint64(1)
	reach := func(want string) {
		poll.Until(b, 10*time.Second, func() error {
			ans, err := ask(b, wc.NetNS, "10.77.0.2:80")
			if err != nil {
				return err
			}
			if name, _, _ := strings.Cut(ans, " "); name != want {
				return fmt.Errorf("VIP reached %s, want %s", name, want)
			}
			return nil
		})
	}
	reach(r1.TaskID)
	next := r2
	for b.Loop() {
		version++
		v := view(version, next)
		th.hosts[1].r.SetView(v)
		h0.r.SetView(v)
		reach(next.TaskID)
		if next.TaskID == r1.TaskID {
			next = r2
		} else {
			next = r1
		}
	}
}
