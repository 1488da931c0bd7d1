package allocator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t     *testing.T
	state *raftstore.State
	apply *raftstore.LocalApplier
}

func newFixture(t *testing.T) *fixture {
	s := raftstore.NewState()
	return &fixture{t: t, state: s, apply: raftstore.NewLocalApplier(s)}
}

func (f *fixture) must(cmd raftstore.Command) raftstore.Response {
	f.t.Helper()
	r, err := f.apply.Apply(context.Background(), cmd)
	if err != nil {
		f.t.Fatalf("%T: %v", cmd, err)
	}
	return r
}

func (f *fixture) network(name, subnet string) *api.Network {
	f.t.Helper()
	n, err := NewNetwork(api.NetworkSpec{Name: name, Subnet: subnet}, f.state.Read().Networks())
	if err != nil {
		f.t.Fatal(err)
	}
	n.ID = "net-" + name
	f.must(raftstore.CreateNetwork{Network: n})
	return n
}

// service creates a service and its replicas' tasks (new, unplaced).
func (f *fixture) service(name string, replicas int, spec api.ServiceSpec) {
	f.t.Helper()
	spec.Name, spec.Image, spec.Mode, spec.Replicas = name, "busybox", api.ModeReplicated, uint64(replicas)
	f.must(raftstore.CreateService{Service: &api.Service{ID: "svc-" + name, Spec: spec, CreatedAt: t0}})
	var tasks []*api.Task
	for i := 1; i <= replicas; i++ {
		tasks = append(tasks, &api.Task{ID: fmt.Sprintf("%s.%d", name, i), ServiceID: "svc-" + name, Slot: uint64(i), SpecVersion: 1,
			DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskNew}, CreatedAt: t0})
	}
	f.must(raftstore.WriteTasks{Create: tasks, At: t0})
}

// settle runs passes until one commits nothing (bounded).
func settle(t *testing.T, a *Allocator) {
	t.Helper()
	for range 20 {
		before := a.state.Read().Index()
		if err := a.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
		if a.state.Read().Index() == before {
			return
		}
	}
	t.Fatal("allocation did not settle in 20 passes")
}

// addresses checks that no address is given twice in a network and
// returns them by task.
func addresses(t *testing.T, v *raftstore.View) map[string]string {
	t.Helper()
	owner := map[string]string{}
	byTask := map[string]string{}
	claim := func(net, addr, who string) {
		k := net + " " + addr
		if o, ok := owner[k]; ok {
			t.Fatalf("address %s given to %s and %s", k, o, who)
		}
		owner[k] = who
	}
	for _, s := range v.Services() {
		for _, vip := range s.Endpoint.VIPs {
			claim(vip.NetworkID, vip.Addr, s.Spec.Name)
		}
	}
	for _, task := range v.Tasks() {
		for _, a := range task.Networks {
			claim(a.NetworkID, a.Addr, task.ID)
			byTask[task.ID] += a.Addr + " "
		}
	}
	return byTask
}

func TestAllocatesVIPsAddressesAndMACs(t *testing.T) {
	f := newFixture(t)
	front := f.network("front", "")
	if front.Subnet != "10.10.0.0/24" || front.Gateway != "10.10.0.1" || front.VNI != FirstVNI {
		t.Fatalf("network = %+v, want the pool's first /24 and VNI %d", front, FirstVNI)
	}
	f.service("web", 2, api.ServiceSpec{Networks: []api.NetworkAttachmentSpec{{Target: "front", Aliases: []string{"w"}}}})
	f.service("plain", 1, api.ServiceSpec{}) // host network: nothing to allocate
	settle(t, New(f.state, f.apply, nil))
	v := f.state.Read()
	if got := v.ServiceByName("web").Endpoint.VIPs; len(got) != 1 || got[0].Addr != "10.10.0.2/24" {
		t.Errorf("VIPs = %+v, want 10.10.0.2/24", got)
	}
	t1 := v.Task("web.1").Networks
	if len(t1) != 1 || t1[0].Addr != "10.10.0.3/24" || t1[0].MAC != "02:42:0a:0a:00:03" || t1[0].Aliases[0] != "w" {
		t.Errorf("web.1 networks = %+v", t1)
	}
	if got := v.Task("plain.1").Networks; got != nil {
		t.Errorf("a host-network task got addresses: %+v", got)
	}
	addresses(t, v)
}

func TestIngressAndDynamicPorts(t *testing.T) {
	f := newFixture(t)
	f.service("a", 1, api.ServiceSpec{Endpoint: api.EndpointSpec{Ports: []api.PortConfig{{TargetPort: 80}}}})
	f.service("b", 1, api.ServiceSpec{Endpoint: api.EndpointSpec{Ports: []api.PortConfig{{TargetPort: 80, PublishedPort: 8080}}}})
	settle(t, New(f.state, f.apply, nil))
	v := f.state.Read()
	ing := v.NetworkByName(api.NetworkIngress)
	if ing == nil || !ing.Ingress || ing.Subnet != IngressSubnet.String() {
		t.Fatalf("ingress = %+v", ing)
	}
	pa := v.ServiceByName("a").Endpoint.Ports
	if len(pa) != 1 || pa[0].PublishedPort != api.DynamicPortFirst || pa[0].Protocol != "tcp" || pa[0].PublishMode != "ingress" {
		t.Errorf("a's ports = %+v, want 30000/tcp ingress", pa)
	}
	if got := v.Task("b.1").Networks; len(got) != 1 || got[0].NetworkID != ing.ID {
		t.Errorf("b.1 networks = %+v, want ingress", got)
	}
	if o := PortOwner(v.Services(), "c", api.PortConfig{TargetPort: 1, PublishedPort: 8080}); o != "b" {
		t.Errorf("PortOwner(8080) = %q, want b", o)
	}
	if o := PortOwner(v.Services(), "c", api.PortConfig{TargetPort: 1, PublishedPort: 8080, Protocol: "udp"}); o != "" {
		t.Errorf("PortOwner(8080/udp) = %q, want none", o)
	}
}

func TestNoIPLeftLeavesTaskPending(t *testing.T) {
	f := newFixture(t)
	// A /29: 8 addresses minus network, gateway, broadcast and the VIP = 4.
	f.network("tiny", "10.20.0.0/29")
	f.service("web", 6, api.ServiceSpec{Networks: []api.NetworkAttachmentSpec{{Target: "tiny"}}})
	settle(t, New(f.state, f.apply, nil))
	v := f.state.Read()
	var pending []string
	for _, task := range v.TasksByService("svc-web") {
		if len(task.Networks) == 0 {
			if !strings.Contains(task.Status.PendingReason, `no IP left in network "tiny" (10.20.0.0/29)`) || task.Status.State != api.TaskPending {
				t.Errorf("%s: %s %q", task.ID, task.Status.State, task.Status.PendingReason)
			}
			pending = append(pending, task.ID)
		}
	}
	if len(pending) != 2 {
		t.Errorf("pending = %v, want 2 of 6", pending)
	}
	addresses(t, v)
	// A task that ends frees its address for a waiting one.
	done := v.Task("web.1").Clone()
	done.Status = api.TaskStatus{State: api.TaskFailed}
	f.must(raftstore.WriteTasks{Update: []*api.Task{done}, At: t0})
	settle(t, New(f.state, f.apply, nil))
	if got := f.state.Read().Task(pending[0]).Networks; len(got) != 1 || got[0].Addr != "10.20.0.3/29" {
		t.Errorf("%s after web.1 failed: %+v, want web.1's 10.20.0.3/29", pending[0], got)
	}
}

// TestNewLeaderContinuesWithoutDoubleAllocation: one allocator commits part
// of the work and stops (its leader lost office); a fresh one, knowing
// only the state, finishes it; no address is given twice and nothing the
// first committed changes.
func TestNewLeaderContinuesWithoutDoubleAllocation(t *testing.T) {
	f := newFixture(t)
	f.network("front", "")
	f.network("back", "")
	f.service("web", 5, api.ServiceSpec{Networks: []api.NetworkAttachmentSpec{{Target: "front"}, {Target: "back"}}})
	f.service("db", 3, api.ServiceSpec{Networks: []api.NetworkAttachmentSpec{{Target: "back"}}})
	old := maxTasksPerPlan
	maxTasksPerPlan = 3
	t.Cleanup(func() { maxTasksPerPlan = old })
	if err := New(f.state, f.apply, nil).Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := addresses(t, f.state.Read())
	if len(first) != 3 {
		t.Fatalf("first leader allocated %d tasks, want 3", len(first))
	}
	settle(t, New(f.state, f.apply, nil))
	final := addresses(t, f.state.Read())
	if len(final) != 8 {
		t.Fatalf("allocated %d tasks, want 8", len(final))
	}
	for id, a := range first {
		if final[id] != a {
			t.Errorf("%s moved from %s to %s", id, a, final[id])
		}
	}
	// The same state always gives the same plan.
	in := func() Inputs {
		v := f.state.Read()
		return Inputs{Networks: v.Networks(), Services: v.Services(), Tasks: v.Tasks(),
			SpecOf: func(t *api.Task) *api.ServiceSpec { return v.ServiceSpec(t.ServiceID, t.SpecVersion) }}
	}
	if p := Compute(in()); !p.Empty() {
		t.Errorf("settled state plans %+v", p)
	}
}

func TestPickSubnetSkipsTaken(t *testing.T) {
	taken := []*api.Network{{Subnet: "10.10.0.0/24"}, {Subnet: "10.10.1.128/25"}}
	p, err := PickSubnet(taken)
	if err != nil || p.String() != "10.10.2.0/24" {
		t.Fatalf("PickSubnet = %v, %v; want 10.10.2.0/24", p, err)
	}
	if o := Overlap(p, append(taken, &api.Network{Spec: api.NetworkSpec{Name: "big"}, Subnet: "10.10.0.0/16"})); o == nil || o.Spec.Name != "big" {
		t.Errorf("Overlap = %+v", o)
	}
}
