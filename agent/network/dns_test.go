package network

import (
	"fmt"
	"net"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/poll"
)

func dnsView() *api.NetworkView {
	return &api.NetworkView{
		Networks: []api.Network{testNet, {ID: "n2", Subnet: "10.78.0.0/24", Gateway: "10.78.0.1", VNI: 7}},
		Endpoints: []api.Endpoint{
			{TaskID: "b1", ServiceID: "back", NetworkID: "n1", Addr: "10.77.0.21/24", Running: true, Aliases: []string{"db-primary"}},
			{TaskID: "b2", ServiceID: "back", NetworkID: "n1", Addr: "10.77.0.22/24", Running: true},
			{TaskID: "b3", ServiceID: "back", NetworkID: "n1", Addr: "10.77.0.23/24"}, // not running
			{TaskID: "r1", ServiceID: "rr", NetworkID: "n1", Addr: "10.77.0.31/24", Running: true},
			{TaskID: "o1", ServiceID: "other", NetworkID: "n2", Addr: "10.78.0.5/24", Running: true},
		},
		Services: []api.ServiceRoutes{
			{ServiceID: "back", Name: "shop_back", Stack: "shop", ShortName: "back", EndpointMode: api.EndpointModeVIP,
				VIPs: []api.VIP{{NetworkID: "n1", Addr: "10.77.0.2/24"}}, Aliases: map[string][]string{"n1": {"api"}}},
			{ServiceID: "rr", Name: "rr", EndpointMode: api.EndpointModeDNSRR},
			{ServiceID: "other", Name: "other", EndpointMode: api.EndpointModeVIP, VIPs: []api.VIP{{NetworkID: "n2", Addr: "10.78.0.2/24"}}},
		},
	}
}

func TestRecordsAnswerOnlyForTheSandboxesNetworks(t *testing.T) {
	rec := buildRecords(dnsView())
	in := Sandbox{TaskID: "c", Stack: "shop", Attachments: []api.NetworkAttachment{{NetworkID: "n1"}}}
	outside := Sandbox{TaskID: "d", Attachments: []api.NetworkAttachment{{NetworkID: "n1"}}}
	for _, tc := range []struct {
		sb    Sandbox
		name  string
		want  []string
		owned bool
	}{
		{in, "shop_back.", []string{"10.77.0.2"}, true},
		{in, "SHOP_BACK", []string{"10.77.0.2"}, true},
		{in, "back.", []string{"10.77.0.2"}, true},
		{in, "api.", []string{"10.77.0.2"}, true},
		{in, "tasks.shop_back.", []string{"10.77.0.21", "10.77.0.22"}, true},
		{in, "tasks.back.", []string{"10.77.0.21", "10.77.0.22"}, true},
		{in, "rr.", []string{"10.77.0.31"}, true},
		{in, "db-primary.", []string{"10.77.0.21"}, true},
		{in, "other.", nil, false},       // on n2 only
		{outside, "back.", nil, false},   // short names are stack-local
		{in, "example.org.", nil, false}, // forwarded
	} {
		t.Run(tc.name, func(t *testing.T) {
			ips, ok := rec.lookup(tc.sb, tc.name)
			var got []string
			for _, ip := range ips {
				got = append(got, ip.String())
			}
			if ok != tc.owned || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("lookup(%s) = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.owned)
			}
		})
	}
}

// query asks the embedded DNS inside the namespace at path.
func query(t *testing.T, path, name string, proto string) (*dns.Msg, error) {
	c := &dns.Client{Net: proto, Timeout: time.Second}
	var conn *dns.Conn
	if err := inNS(t, path, func() (err error) {
		conn, err = c.Dial(DNSAddr)
		return err
	}); err != nil {
		return nil, err
	}
	defer conn.Close()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	resp, _, err := c.ExchangeWithConn(m, conn)
	return resp, err
}

func aRecords(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out
}

// fakeUpstream answers every name with 192.0.2.1, inside host0's namespace.
func fakeUpstream(t *testing.T, h *testHost) {
	t.Helper()
	var pc net.PacketConn
	must(t, inNS(t, h.ns, func() (err error) {
		pc, err = net.ListenPacket("udp", testUpstream)
		return err
	}))
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)})
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
}

func TestEmbeddedDNSInsideTheSandbox(t *testing.T) {
	th := newTestHosts(t, 1)
	h := th.hosts[0]
	v := dnsView()
	v.Version = 1
	self := endpoint(0, h, "client", true)
	v.Endpoints = append(v.Endpoints, self)
	runReconcilers(t, th, v)
	sb := sandboxOf(self)
	sb.Stack = "shop"
	w, err := h.r.Attach(t.Context(), sb)
	must(t, err)
	fakeUpstream(t, h)
	for _, proto := range []string{"udp", "tcp"} {
		for name, want := range map[string][]string{
			"back":        {"10.77.0.2"},
			"tasks.back":  {"10.77.0.21", "10.77.0.22"},
			"example.org": {"192.0.2.1"}, // forwarded from the host's namespace
			"other":       {"192.0.2.1"}, // not on this sandbox's networks: not ours
		} {
			poll.Until(t, 5*time.Second, func() error {
				m, err := query(t, w.NetNS, name, proto)
				if err != nil {
					return err
				}
				if got := aRecords(m); !reflect.DeepEqual(got, want) {
					return fmt.Errorf("%s %s = %v, want %v", proto, name, got, want)
				}
				if len(m.Answer) > 0 && name != "example.org" && name != "other" && m.Answer[0].Header().Ttl != DNSTTL {
					return fmt.Errorf("ttl %d", m.Answer[0].Header().Ttl)
				}
				return nil
			})
		}
	}
	// A replica stops: tasks.back follows at once.
	v2 := *v
	v2.Version = 2
	v2.Endpoints = slices.DeleteFunc(slices.Clone(v.Endpoints), func(e api.Endpoint) bool { return e.TaskID == "b2" })
	h.r.SetView(&v2)
	m, err := query(t, w.NetNS, "tasks.back", "udp")
	must(t, err)
	if got := aRecords(m); !reflect.DeepEqual(got, []string{"10.77.0.21"}) {
		t.Fatalf("tasks.back after b2 stopped = %v", got)
	}
}
