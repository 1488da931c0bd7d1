package dispatcher

import (
	"fmt"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

// BenchmarkBuildNetworkView computes one node's view in a cluster of 20
// nodes, 10 networks, 50 services and 5,000 running tasks: the work of
// one session after a change that concerns networks.
func BenchmarkBuildNetworkView(b *testing.B) {
	var in NetworkInputs
	for i := range 20 {
		in.Nodes = append(in.Nodes, &api.Node{ID: fmt.Sprintf("node%02d", i), Addr: fmt.Sprintf("10.213.7.%d:4243", 10+i)})
	}
	for i := range 10 {
		in.Networks = append(in.Networks, &api.Network{ID: fmt.Sprintf("n%d", i), Spec: api.NetworkSpec{Name: fmt.Sprintf("net%d", i)}})
	}
	for s := range 50 {
		net := fmt.Sprintf("n%d", s%10)
		in.Services = append(in.Services, &api.Service{ID: fmt.Sprintf("s%02d", s),
			Spec:     api.ServiceSpec{Name: fmt.Sprintf("svc%02d", s), Networks: []api.NetworkAttachmentSpec{{Target: fmt.Sprintf("net%d", s%10)}}},
			Endpoint: api.ServiceEndpoint{VIPs: []api.VIP{{NetworkID: net, Addr: "10.0.0.2/16"}}}})
		for r := range 100 {
			in.Tasks = append(in.Tasks, &api.Task{ID: fmt.Sprintf("t%02d.%d", s, r), ServiceID: fmt.Sprintf("s%02d", s),
				NodeID: fmt.Sprintf("node%02d", r%20), DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskRunning},
				Networks: []api.NetworkAttachment{{NetworkID: net, Addr: "10.0.0.9/16"}}})
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if v := BuildNetworkView("node03", in); len(v.Endpoints) != 5000 {
			b.Fatalf("%d endpoints, want 5000", len(v.Endpoints))
		}
	}
}
