package ctl

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// newFakeNetControl is the fake Control server holding two networks, and
// service web on one of them and publishing ports.
func newFakeNetControl() *fakeControl {
	f := newFakeControl()
	f.networks = []*shoalpb.NetworkSummary{
		{Network: &shoalpb.Network{Id: "net1front000000000000000", Spec: &shoalpb.NetworkSpec{Name: "front", Driver: "overlay", Labels: map[string]string{"team": "web"}},
			Subnet: "10.10.0.0/24", Gateway: "10.10.0.1", Vni: 4096}, Services: []string{"web"}},
		{Network: &shoalpb.Network{Id: "net2ingress00000000000000", Spec: &shoalpb.NetworkSpec{Name: "ingress", Driver: "overlay"},
			Subnet: "10.255.0.0/16", Gateway: "10.255.0.1", Vni: 4097, Ingress: true}},
	}
	web := f.services[0]
	web.Spec.Networks = []*shoalpb.NetworkAttachmentSpec{{Target: "front", Aliases: []string{"www"}}}
	web.Spec.Endpoint = &shoalpb.EndpointSpec{Ports: []*shoalpb.PortConfig{{TargetPort: 80, PublishedPort: 8080}, {TargetPort: 53, Protocol: "udp", PublishMode: "host"}}}
	web.Endpoint = &shoalpb.ServiceEndpoint{
		Ports: []*shoalpb.PortConfig{{TargetPort: 80, PublishedPort: 8080, Protocol: "tcp", PublishMode: "ingress"}, {TargetPort: 53, PublishedPort: 30000, Protocol: "udp", PublishMode: "host"}},
		Vips:  []*shoalpb.VIP{{NetworkId: "net1front000000000000000", Addr: "10.10.0.2/24"}, {NetworkId: "net2ingress00000000000000", Addr: "10.255.0.2/16"}},
	}
	return f
}

func (f *fakeControl) findNet(ref string) (*shoalpb.NetworkSummary, error) {
	for _, n := range f.networks {
		if n.GetNetwork().GetSpec().GetName() == ref || strings.HasPrefix(n.GetNetwork().GetId(), ref) {
			return n, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "network %q: not found", ref)
}

func (f *fakeControl) CreateNetwork(_ context.Context, req *shoalpb.CreateNetworkRequest) (*shoalpb.NetworkSummary, error) {
	return handle(f, req, func() (*shoalpb.NetworkSummary, error) {
		if _, err := f.findNet(req.GetSpec().GetName()); err == nil {
			return nil, status.Errorf(codes.AlreadyExists, "network %q: already exists", req.GetSpec().GetName())
		}
		n := &shoalpb.Network{Id: "net3" + req.GetSpec().GetName() + "0000000000", Spec: req.GetSpec(), Subnet: "10.10.1.0/24", Gateway: "10.10.1.1", Vni: 4098}
		sum := &shoalpb.NetworkSummary{Network: n}
		if !req.GetDryRun() {
			f.networks = append(f.networks, sum)
		}
		return sum, nil
	})
}

func (f *fakeControl) ListNetworks(_ context.Context, req *shoalpb.ListNetworksRequest) (*shoalpb.ListNetworksResponse, error) {
	return handle(f, req, func() (*shoalpb.ListNetworksResponse, error) {
		return &shoalpb.ListNetworksResponse{Networks: f.networks}, nil
	})
}

func (f *fakeControl) GetNetwork(_ context.Context, req *shoalpb.GetNetworkRequest) (*shoalpb.NetworkSummary, error) {
	return handle(f, req, func() (*shoalpb.NetworkSummary, error) { return f.findNet(req.GetNetwork()) })
}

func (f *fakeControl) RemoveNetwork(_ context.Context, req *shoalpb.RemoveNetworkRequest) (*shoalpb.RemoveNetworkResponse, error) {
	return handle(f, req, func() (*shoalpb.RemoveNetworkResponse, error) {
		n, err := f.findNet(req.GetNetwork())
		if err != nil {
			return nil, err
		}
		if len(n.GetServices()) > 0 {
			return nil, status.Errorf(codes.FailedPrecondition, "network %q is in use by service %q", n.GetNetwork().GetSpec().GetName(), n.GetServices()[0])
		}
		f.networks = slices.DeleteFunc(f.networks, func(o *shoalpb.NetworkSummary) bool { return o == n })
		return &shoalpb.RemoveNetworkResponse{Index: 9}, nil
	})
}

func TestNetworkGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"network_ls", []string{"network", "ls"}},
		{"network_inspect_pretty", []string{"network", "inspect", "--pretty", "front", "ingress"}},
		{"network_create_dry_run", []string{"network", "create", "--dry-run", "--subnet", "10.10.1.0/24", "back"}},
		{"service_inspect_pretty_networks", []string{"service", "inspect", "--pretty", "web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := serveTCP(t, newFakeNetControl())
			checkGolden(t, tt.name, mustRun(t, host, tt.args...))
		})
	}
}

func TestNetworkCommandsSend(t *testing.T) {
	f := newFakeNetControl()
	host := serveTCP(t, f)
	mustRun(t, host, "network", "create", "-d", "overlay", "--subnet", "10.20.0.0/24", "--attachable", "--internal", "--label", "a=b", "back")
	got := sent[*shoalpb.CreateNetworkRequest](f)[0].GetSpec()
	want := &shoalpb.NetworkSpec{Name: "back", Driver: "overlay", Subnet: "10.20.0.0/24", Attachable: true, Internal: true, Labels: map[string]string{"a": "b"}}
	if got.String() != want.String() {
		t.Errorf("create sent %v, want %v", got, want)
	}
	mustFail(t, host, []string{"network", "rm", "front"}, `in use by service "web"`)

	mustRun(t, host, "service", "create", "-d", "--name", "api", "--network", "front,alias=a1", "--network", "back",
		"--publish", "published=8080,target=80,mode=host", "-p", "9090:90/udp", "-p", "70", "--endpoint-mode", "vip", "busybox")
	spec := shoalpb.ToServiceSpec(sent[*shoalpb.CreateServiceRequest](f)[0].GetSpec())
	wantNets := []api.NetworkAttachmentSpec{{Target: "front", Aliases: []string{"a1"}}, {Target: "back"}}
	wantPorts := []api.PortConfig{{TargetPort: 80, PublishedPort: 8080, PublishMode: "host"}, {TargetPort: 90, PublishedPort: 9090, Protocol: "udp"}, {TargetPort: 70}}
	if !reflect.DeepEqual(spec.Networks, wantNets) || !reflect.DeepEqual(spec.Endpoint.Ports, wantPorts) || spec.Endpoint.Mode != "vip" {
		t.Errorf("create sent networks %+v ports %+v mode %q", spec.Networks, spec.Endpoint.Ports, spec.Endpoint.Mode)
	}

	mustRun(t, host, "service", "update", "-d", "--network-add", "back", "--network-rm", "front", "--publish-rm", "8080", "--publish-add", "443:8443", "web")
	up := shoalpb.ToServiceSpec(sent[*shoalpb.UpdateServiceRequest](f)[0].GetSpec())
	wantNets = []api.NetworkAttachmentSpec{{Target: "back"}}
	wantPorts = []api.PortConfig{{TargetPort: 53, Protocol: "udp", PublishMode: "host"}, {TargetPort: 8443, PublishedPort: 443}}
	if !reflect.DeepEqual(up.Networks, wantNets) || !reflect.DeepEqual(up.Endpoint.Ports, wantPorts) {
		t.Errorf("update sent networks %+v ports %+v", up.Networks, up.Endpoint.Ports)
	}
}

func TestNetworkFlagErrors(t *testing.T) {
	host := serveTCP(t, newFakeNetControl())
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"network", "create", "--subnet", "10.20.0.1/24", "x"}, []string{"--subnet", "10.20.0.1/24", "10.20.0.0"}},
		{[]string{"network", "create", "none"}, []string{"NAME", "reserved"}},
		{[]string{"network", "create", "-d", "bridge", "x"}, []string{"--driver", "bridge"}},
		{[]string{"service", "create", "--name", "a", "-p", "70000:80", "busybox"}, []string{"--publish", "70000:80", "published port"}},
		{[]string{"service", "create", "--name", "a", "-p", "published=80", "busybox"}, []string{"--publish", "target=PORT missing"}},
		{[]string{"service", "create", "--name", "a", "-p", "target=80,mode=mesh", "busybox"}, []string{"--publish", "mesh", "ingress or host"}},
		{[]string{"service", "create", "--name", "a", "--network", ",alias=x", "busybox"}, []string{"--network", "no network name"}},
		{[]string{"service", "create", "--name", "a", "--endpoint-mode", "rr", "busybox"}, []string{"--endpoint-mode", "rr"}},
		{[]string{"service", "create", "--name", "a", "--network", "host", "-p", "80", "busybox"}, []string{"--publish", "mode=host"}},
	}
	for _, c := range cases {
		mustFail(t, host, c.args, c.want...)
	}
}

func TestParsePublish(t *testing.T) {
	for in, want := range map[string]api.PortConfig{
		"8080:80":   {PublishedPort: 8080, TargetPort: 80},
		"53:53/udp": {PublishedPort: 53, TargetPort: 53, Protocol: "udp"},
		"80":        {TargetPort: 80},
		"target=80": {TargetPort: 80},
		"published=1,target=2,protocol=udp,mode=host": {PublishedPort: 1, TargetPort: 2, Protocol: "udp", PublishMode: "host"},
	} {
		got, err := parsePublish("--publish", in)
		if err != nil || got != want {
			t.Errorf("parsePublish(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
}
