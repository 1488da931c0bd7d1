package dispatcher

import (
	"reflect"
	"testing"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

func netTask(id, svc, node string, st api.TaskState, net, addr string) *api.Task {
	return &api.Task{ID: id, ServiceID: "svc-" + svc, ServiceName: svc, NodeID: node, DesiredState: api.TaskRunning,
		Status:   api.TaskStatus{State: st},
		Networks: []api.NetworkAttachment{{NetworkID: net, Addr: addr, MAC: "m-" + id}}}
}

func netInputs() NetworkInputs {
	front := &api.Network{ID: "nf", Spec: api.NetworkSpec{Name: "shop_default"}, Subnet: "10.10.0.0/24", VNI: 4096}
	other := &api.Network{ID: "no", Spec: api.NetworkSpec{Name: "other"}, Subnet: "10.10.1.0/24", VNI: 4097}
	ingress := &api.Network{ID: "ni", Spec: api.NetworkSpec{Name: api.NetworkIngress}, Subnet: "10.255.0.0/16", VNI: 4098, Ingress: true}
	back := &api.Service{ID: "svc-shop_back", Spec: api.ServiceSpec{Name: "shop_back", Labels: map[string]string{api.LabelStack: "shop"},
		Networks: []api.NetworkAttachmentSpec{{Target: "shop_default", Aliases: []string{"db"}}}},
		Endpoint: api.ServiceEndpoint{VIPs: []api.VIP{{NetworkID: "nf", Addr: "10.10.0.2/24"}}}}
	lone := &api.Service{ID: "svc-lone", Spec: api.ServiceSpec{Name: "lone", Networks: []api.NetworkAttachmentSpec{{Target: "other"}}},
		Endpoint: api.ServiceEndpoint{VIPs: []api.VIP{{NetworkID: "no", Addr: "10.10.1.2/24"}}}}
	return NetworkInputs{
		Index:    42,
		Networks: []*api.Network{ingress, other, front},
		Services: []*api.Service{lone, back},
		Tasks: []*api.Task{
			netTask("t1", "shop_back", "n1", api.TaskRunning, "nf", "10.10.0.3/24"),
			netTask("t2", "shop_back", "n2", api.TaskStarting, "nf", "10.10.0.4/24"),
			netTask("t3", "shop_back", "n2", api.TaskFailed, "nf", "10.10.0.5/24"),
			netTask("t4", "lone", "n2", api.TaskRunning, "no", "10.10.1.3/24"),
			{ID: "t5", ServiceID: "svc-host", NodeID: "n1", DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskRunning}},
		},
		Nodes: []*api.Node{{ID: "n1", Addr: "10.213.7.11:4243"}, {ID: "n2", Addr: "10.213.7.12:4243"}},
	}
}

func TestBuildNetworkViewForOneNode(t *testing.T) {
	view := BuildNetworkView("n1", netInputs())
	if view.Version != 42 {
		t.Errorf("version = %d, want the state's index 42", view.Version)
	}
	var names []string
	for _, n := range view.Networks {
		names = append(names, n.Spec.Name)
	}
	// n1 runs a task on shop_default only; ingress is on every agent; "other" is not n1's.
	if want := []string{api.NetworkIngress, "shop_default"}; !reflect.DeepEqual(names, want) {
		t.Errorf("networks = %v, want %v", names, want)
	}
	want := []api.Endpoint{
		{TaskID: "t1", ServiceID: "svc-shop_back", ServiceName: "shop_back", NodeID: "n1", NodeAddr: "10.213.7.11",
			NetworkID: "nf", Addr: "10.10.0.3/24", MAC: "m-t1", Running: true},
		{TaskID: "t2", ServiceID: "svc-shop_back", ServiceName: "shop_back", NodeID: "n2", NodeAddr: "10.213.7.12",
			NetworkID: "nf", Addr: "10.10.0.4/24", MAC: "m-t2"},
	}
	if !reflect.DeepEqual(view.Endpoints, want) {
		t.Errorf("endpoints:\n got %+v\nwant %+v (the failed task t3 and other networks' t4 left out)", view.Endpoints, want)
	}
	if len(view.Services) != 1 {
		t.Fatalf("services = %+v, want shop_back alone", view.Services)
	}
	r := view.Services[0]
	if r.Name != "shop_back" || r.Stack != "shop" || r.ShortName != "back" || r.EndpointMode != api.EndpointModeVIP ||
		!reflect.DeepEqual(r.VIPs, []api.VIP{{NetworkID: "nf", Addr: "10.10.0.2/24"}}) ||
		!reflect.DeepEqual(r.Aliases, map[string][]string{"nf": {"db"}}) {
		t.Errorf("routes = %+v", r)
	}
}

func TestBuildNetworkViewIsDeterministic(t *testing.T) {
	a := BuildNetworkView("n2", netInputs())
	in := netInputs()
	in.Tasks[0], in.Tasks[3] = in.Tasks[3], in.Tasks[0]
	b := BuildNetworkView("n2", in)
	if !sameView(a, b) {
		t.Errorf("task order changed the view:\n%+v\n%+v", a, b)
	}
	if len(a.Networks) != 3 || len(a.Services) != 2 {
		t.Errorf("n2's view = %d networks, %d services, want 3 and 2", len(a.Networks), len(a.Services))
	}
}

func TestNetworkViewOfNodeWithoutNetworkedTasks(t *testing.T) {
	view := BuildNetworkView("n9", netInputs())
	if len(view.Networks) != 1 || !view.Networks[0].Ingress || len(view.Endpoints) != 0 || len(view.Services) != 0 {
		t.Errorf("view = %+v, want ingress alone", view)
	}
}

func TestNetEventsIgnoreStepsViewsDoNotShow(t *testing.T) {
	n := newNetEvents()
	task := netTask("t1", "web", "n1", api.TaskAssigned, "nf", "10.10.0.3/24")
	ev := func(st api.TaskState) raftstore.Event {
		c := *task
		c.Status.State = st
		return raftstore.Event{Action: "update", Task: &c}
	}
	steps := []struct {
		state api.TaskState
		want  bool
	}{
		{api.TaskAssigned, true}, {api.TaskAccepted, false}, {api.TaskPreparing, false}, {api.TaskStarting, false},
		{api.TaskRunning, true}, {api.TaskRunning, false}, {api.TaskFailed, true},
	}
	for _, s := range steps {
		if got := n.changes(ev(s.state)); got != s.want {
			t.Errorf("%s: changes = %v, want %v", s.state, got, s.want)
		}
	}
	if n.changes(raftstore.Event{Action: "update", Task: &api.Task{ID: "host", Status: api.TaskStatus{State: api.TaskRunning}}}) {
		t.Error("a host-network task woke the sessions")
	}
}
