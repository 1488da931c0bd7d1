package shoalpb

import (
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

func TestNetworkViewRoundTrip(t *testing.T) {
	v := &api.NetworkView{
		Version:  7,
		Networks: []api.Network{{ID: "n1", Spec: api.NetworkSpec{Name: "front", Driver: api.NetworkDriverOverlay, Labels: map[string]string{"a": "b"}, Internal: true}, Subnet: "10.10.1.0/24", Gateway: "10.10.1.1", VNI: 4097}},
		Endpoints: []api.Endpoint{{TaskID: "t1", ServiceID: "s1", ServiceName: "web", NodeID: "node1", NodeAddr: "10.213.7.2",
			NetworkID: "n1", Addr: "10.10.1.3/24", MAC: "02:42:0a:0a:01:03", Aliases: []string{"w"}, Running: true}},
		Services: []api.ServiceRoutes{{ServiceID: "s1", Name: "shop_web", Stack: "shop", ShortName: "web", EndpointMode: api.EndpointModeVIP,
			VIPs: []api.VIP{{NetworkID: "n1", Addr: "10.10.1.2/24"}}, Ports: []api.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: "ingress"}},
			Aliases: map[string][]string{"n1": {"w"}}}},
	}
	if got := ToNetworkView(FromNetworkView(v)); !reflect.DeepEqual(got, v) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, v)
	}
}

func TestServiceNetworkFieldsRoundTrip(t *testing.T) {
	spec := api.ServiceSpec{Name: "web", Image: "busybox",
		Networks: []api.NetworkAttachmentSpec{{Target: "front", Aliases: []string{"w"}}},
		Endpoint: api.EndpointSpec{Mode: api.EndpointModeDNSRR, Ports: []api.PortConfig{{Protocol: "udp", TargetPort: 53, PublishedPort: 5353, PublishMode: "host"}}}}
	svc := &api.Service{ID: "s1", Spec: spec, SpecVersion: 1,
		Endpoint: api.ServiceEndpoint{Ports: spec.Endpoint.Ports, VIPs: []api.VIP{{NetworkID: "n1", Addr: "10.10.1.2/24"}}}}
	got := ToService(FromService(svc))
	if !reflect.DeepEqual(got.Spec.Networks, spec.Networks) || !reflect.DeepEqual(got.Spec.Endpoint, spec.Endpoint) || !reflect.DeepEqual(got.Endpoint, svc.Endpoint) {
		t.Fatalf("round trip: got %+v", got)
	}
	task := &api.Task{ID: "t1", Networks: []api.NetworkAttachment{{NetworkID: "n1", Addr: "10.10.1.3/24", MAC: "02:42:0a:0a:01:03"}}}
	gt, err := ToTask(FromTask(task))
	if err != nil || !reflect.DeepEqual(gt.Networks, task.Networks) {
		t.Fatalf("task round trip: %v %+v", err, gt)
	}
}

func TestCheckServiceSpecRefusesPortOver16Bits(t *testing.T) {
	s := &ServiceSpec{Endpoint: &EndpointSpec{Ports: []*PortConfig{{TargetPort: 80, PublishedPort: 70000}}}}
	err := CheckServiceSpec(s)
	if err == nil || !strings.Contains(err.Error(), "spec.endpoint.ports[0].published_port") || !strings.Contains(err.Error(), "70000") {
		t.Fatalf("err = %v", err)
	}
}
