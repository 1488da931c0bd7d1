package controlapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

type netCase struct {
	name  string
	call  func(ctx context.Context, cl shoalpb.ControlClient) error
	code  codes.Code
	parts []string
}

func createNet(spec *shoalpb.NetworkSpec) func(context.Context, shoalpb.ControlClient) error {
	return func(ctx context.Context, cl shoalpb.ControlClient) error {
		_, err := cl.CreateNetwork(ctx, &shoalpb.CreateNetworkRequest{Spec: spec})
		return err
	}
}

func createSvc(mod func(*shoalpb.ServiceSpec)) func(context.Context, shoalpb.ControlClient) error {
	return func(ctx context.Context, cl shoalpb.ControlClient) error {
		s := validSpec("new")
		mod(s)
		_, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: s})
		return err
	}
}

func ports(p ...*shoalpb.PortConfig) func(*shoalpb.ServiceSpec) {
	return func(s *shoalpb.ServiceSpec) { s.Endpoint = &shoalpb.EndpointSpec{Ports: p} }
}

func netCases() []netCase {
	inv := codes.InvalidArgument
	return []netCase{
		{"invalid cidr", createNet(&shoalpb.NetworkSpec{Name: "n", Subnet: "10.20.300.0/24"}), inv, []string{"spec.subnet", "10.20.300.0/24", "not a CIDR"}},
		{"host bits", createNet(&shoalpb.NetworkSpec{Name: "n", Subnet: "10.20.0.5/24"}), inv, []string{"spec.subnet", "10.20.0.0"}},
		{"too small", createNet(&shoalpb.NetworkSpec{Name: "n", Subnet: "10.20.0.0/30"}), inv, []string{"spec.subnet", "/30", "/29"}},
		{"ipv6", createNet(&shoalpb.NetworkSpec{Name: "n", Subnet: "fd00::/64"}), inv, []string{"spec.subnet", "IPv4"}},
		{"overlap", createNet(&shoalpb.NetworkSpec{Name: "n", Subnet: "10.30.0.128/25"}), inv, []string{"spec.subnet", `overlaps network "front" (10.30.0.0/24)`}},
		{"ingress range", createNet(&shoalpb.NetworkSpec{Name: "n", Subnet: "10.255.3.0/24"}), inv, []string{"spec.subnet", "10.255.0.0/16", "ingress"}},
		{"node address", createNet(&shoalpb.NetworkSpec{Name: "n", Subnet: "10.213.7.0/24"}), inv, []string{"spec.subnet", "10.213.7.9", "node n1"}},
		{"reserved ingress", createNet(&shoalpb.NetworkSpec{Name: "ingress"}), inv, []string{"spec.name", `"ingress"`, "reserved"}},
		{"reserved host", createNet(&shoalpb.NetworkSpec{Name: "host"}), inv, []string{"spec.name", "reserved"}},
		{"bad name", createNet(&shoalpb.NetworkSpec{Name: "Front Net"}), inv, []string{"spec.name", "Front Net"}},
		{"bad driver", createNet(&shoalpb.NetworkSpec{Name: "n", Driver: "bridge"}), inv, []string{"spec.driver", "bridge", "overlay"}},
		{"no spec", createNet(nil), inv, []string{"spec"}},
		{"taken name", createNet(&shoalpb.NetworkSpec{Name: "front"}), codes.AlreadyExists, []string{`"front"`}},
		{"unknown network", createSvc(func(s *shoalpb.ServiceSpec) { s.Networks = []*shoalpb.NetworkAttachmentSpec{{Target: "nope"}} }),
			codes.NotFound, []string{"spec.networks[0].target", "nope"}},
		{"port in use", createSvc(ports(&shoalpb.PortConfig{TargetPort: 80, PublishedPort: 8080})), inv,
			[]string{"spec.endpoint.ports[0].published_port", "8080", `service "web"`}},
		{"port over 16 bits", createSvc(ports(&shoalpb.PortConfig{TargetPort: 80, PublishedPort: 70000})), inv,
			[]string{"published_port", "70000", "65535"}},
		{"no target port", createSvc(ports(&shoalpb.PortConfig{PublishedPort: 9000})), inv, []string{"target_port", "missing"}},
		{"bad protocol", createSvc(ports(&shoalpb.PortConfig{TargetPort: 80, Protocol: "sctp"})), inv, []string{"protocol", "sctp", "tcp or udp"}},
		{"published twice", createSvc(ports(&shoalpb.PortConfig{TargetPort: 80, PublishedPort: 9000}, &shoalpb.PortConfig{TargetPort: 81, PublishedPort: 9000})),
			inv, []string{"ports[1].published_port", "9000", "twice"}},
		{"dnsrr ingress", createSvc(func(s *shoalpb.ServiceSpec) {
			s.Endpoint = &shoalpb.EndpointSpec{Mode: "dnsrr", Ports: []*shoalpb.PortConfig{{TargetPort: 80}}}
		}), inv, []string{"publish_mode", "dnsrr"}},
		{"host network mesh", createSvc(func(s *shoalpb.ServiceSpec) {
			s.Networks = []*shoalpb.NetworkAttachmentSpec{{Target: "host"}}
			s.Endpoint = &shoalpb.EndpointSpec{Ports: []*shoalpb.PortConfig{{TargetPort: 80}}}
		}), inv, []string{"publish_mode", "network host", "mode=host"}},
		{"host with others", createSvc(func(s *shoalpb.ServiceSpec) {
			s.Networks = []*shoalpb.NetworkAttachmentSpec{{Target: "host"}, {Target: "front"}}
		}), inv, []string{"spec.networks", "cannot be combined"}},
		{"bad alias", createSvc(func(s *shoalpb.ServiceSpec) {
			s.Networks = []*shoalpb.NetworkAttachmentSpec{{Target: "front", Aliases: []string{"a b"}}}
		}), inv, []string{"spec.networks[0].aliases[0]", "a b"}},
		{"rm in use", func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.RemoveNetwork(ctx, &shoalpb.RemoveNetworkRequest{Network: "front"})
			return err
		}, codes.FailedPrecondition, []string{`network "front" is in use by service "api"`}},
		{"rm unknown", func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.RemoveNetwork(ctx, &shoalpb.RemoveNetworkRequest{Network: "nope"})
			return err
		}, codes.NotFound, []string{`"nope"`}},
	}
}

// TestNetworkBadRequests sends each bad network request through gRPC to a
// real manager: a clear error naming the field, the value and the limit,
// and nothing changes.
func TestNetworkBadRequests(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{Edit: func(cfg *manager.Config) { cfg.NodeGracePeriod = time.Hour }})
	cl := c.Client(0)
	ctx := t.Context()
	apply(t, c, raftstore.UpsertNode{Node: &api.Node{ID: "n1-abc", Hostname: "n1", Addr: "10.213.7.9:4243", Role: api.RoleWorker,
		Availability: api.AvailabilityActive, Status: api.NodeReady, Resources: api.Resources{NanoCPUs: 1e9, MemoryBytes: 1 << 30}}})
	if _, err := cl.CreateNetwork(ctx, &shoalpb.CreateNetworkRequest{Spec: &shoalpb.NetworkSpec{Name: "front", Subnet: "10.30.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	web := validSpec("web")
	web.Endpoint = &shoalpb.EndpointSpec{Ports: []*shoalpb.PortConfig{{TargetPort: 80, PublishedPort: 8080}}}
	apiSvc := validSpec("api")
	apiSvc.Networks = []*shoalpb.NetworkAttachmentSpec{{Target: "front"}}
	for _, s := range []*shoalpb.ServiceSpec{web, apiSvc} {
		if _, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: s}); err != nil {
			t.Fatalf("create %s: %v", s.GetName(), err)
		}
	}
	node := c.Manager(0).Raft()
	// The allocator makes the ingress network for web's port: wait for it
	// to settle so that only a request could change the state below.
	c.WaitFor(waitTimeout, func() error {
		v := node.State().Read()
		if v.NetworkByName(api.NetworkIngress) == nil || len(v.ServiceByName("web").Endpoint.VIPs) == 0 || len(v.ServiceByName("api").Endpoint.VIPs) == 0 {
			return fmt.Errorf("allocation not done yet")
		}
		return nil
	})
	for _, tc := range netCases() {
		t.Run(tc.name, func(t *testing.T) {
			before := netFingerprint(node.State().Read())
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()
			wantCode(t, tc.call(ctx, cl), tc.code, tc.parts...)
			if got := netFingerprint(node.State().Read()); got != before {
				t.Fatalf("state changed:\nfrom %s\nto   %s", before, got)
			}
		})
	}
}

func netFingerprint(v *raftstore.View) string {
	var b strings.Builder
	for _, n := range v.Networks() {
		fmt.Fprintf(&b, "net %s %s %d; ", n.Spec.Name, n.Subnet, n.VNI)
	}
	for _, s := range v.Services() {
		fmt.Fprintf(&b, "service %s v%d; ", s.Spec.Name, s.SpecVersion)
	}
	return b.String()
}

// TestNetworkAllocationThroughManager: a service on a network gets a VIP,
// its tasks addresses; a pool too small leaves the rest pending with "no
// IP left"; a published port without a number gets one from 30000.
func TestNetworkAllocationThroughManager(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	cl := c.Client(0)
	ctx := t.Context()
	net, err := cl.CreateNetwork(ctx, &shoalpb.CreateNetworkRequest{Spec: &shoalpb.NetworkSpec{Name: "tiny", Subnet: "10.40.0.0/29"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := net.GetNetwork(); n.GetGateway() != "10.40.0.1" || n.GetVni() < 4096 {
		t.Fatalf("network = %v", n)
	}
	s := validSpec("web")
	s.Replicas = 6
	s.Networks = []*shoalpb.NetworkAttachmentSpec{{Target: "tiny"}}
	s.Endpoint = &shoalpb.EndpointSpec{Ports: []*shoalpb.PortConfig{{TargetPort: 80}}}
	if _, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: s}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(waitTimeout, func() error {
		svc, err := cl.GetService(ctx, &shoalpb.GetServiceRequest{Service: "web"})
		if err != nil {
			return err
		}
		ep := svc.GetEndpoint()
		if len(ep.GetVips()) != 2 || len(ep.GetPorts()) != 1 || ep.GetPorts()[0].GetPublishedPort() != api.DynamicPortFirst {
			return fmt.Errorf("endpoint = %v, want VIPs on tiny and ingress and port 30000", ep)
		}
		tasks, err := cl.ListTasks(ctx, &shoalpb.ListTasksRequest{Service: "web"})
		if err != nil {
			return err
		}
		withAddr, noIP := 0, 0
		for _, task := range tasks.GetTasks() {
			switch {
			case len(task.GetNetworks()) == 2:
				withAddr++
			case strings.Contains(task.GetStatus().GetPendingReason(), `no IP left in network "tiny"`):
				noIP++
			}
		}
		if withAddr != 4 || noIP != 2 {
			return fmt.Errorf("%d tasks with addresses, %d with no IP left; want 4 and 2", withAddr, noIP)
		}
		return nil
	})
	ls, err := cl.ListNetworks(ctx, &shoalpb.ListNetworksRequest{})
	if err != nil || len(ls.GetNetworks()) != 2 {
		t.Fatalf("networks = %v, %v; want tiny and ingress", ls, err)
	}
}
