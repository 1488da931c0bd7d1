package dispatcher_test

import (
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// recvView reads messages until a network view comes (bounded).
func recvView(t *testing.T, stream shoalpb.Dispatcher_SessionClient) *shoalpb.NetworkView {
	t.Helper()
	for range 20 {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		if v := m.GetNetworkView(); v != nil {
			return v
		}
	}
	t.Fatal("no network view in 20 messages")
	return nil
}

// TestSessionCarriesNetworkView: an agent gets its view on session start,
// then a newer one when an endpoint on its network appears elsewhere.
func TestSessionCarriesNetworkView(t *testing.T) {
	s := newSingle(t, testGrace)
	svc := s.createService("web", 0)
	ctx := t.Context()
	now := time.Now()
	mustApply := func(cmd raftstore.Command) {
		t.Helper()
		if _, err := s.apply.Apply(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(raftstore.CreateNetwork{Network: &api.Network{ID: "nf", Spec: api.NetworkSpec{Name: "front"}, Subnet: "10.10.0.0/24", VNI: 4096}})
	att := func(addr string) []api.NetworkAttachment {
		return []api.NetworkAttachment{{NetworkID: "nf", Addr: addr, MAC: "02:42:0a:0a:00:03"}}
	}
	t1 := &api.Task{ID: "t1", ServiceID: svc, SpecVersion: 1, Slot: 1, DesiredState: api.TaskRunning,
		Status: api.TaskStatus{State: api.TaskPending}, Networks: att("10.10.0.3/24")}
	mustApply(raftstore.WriteTasks{Create: []*api.Task{t1}, At: now})
	mustApply(raftstore.UpsertNode{Node: &api.Node{ID: "n2", Hostname: "h-n2", Addr: "10.213.7.12:1", Status: api.NodeReady}})

	stream := sessionClient(t, s.addr)
	if err := stream.Send(helloMsg("n1")); err != nil {
		t.Fatal(err)
	}
	// Before n1 has a task on front, its view is empty (no ingress yet).
	if v := recvView(t, stream); len(v.GetNetworks()) != 0 {
		t.Fatalf("view before assignment = %v, want no network", v)
	}
	mustApply(raftstore.AssignTasks{Assignments: []raftstore.Assignment{{TaskID: "t1", NodeID: "n1"}}, At: now})
	first := recvView(t, stream)
	if len(first.GetNetworks()) != 1 || first.GetNetworks()[0].GetVni() != 4096 || len(first.GetEndpoints()) != 1 ||
		first.GetEndpoints()[0].GetNodeAddr() != "127.0.0.1" {
		t.Fatalf("first view = %v, want network front with t1 at 127.0.0.1", first)
	}
	t2 := &api.Task{ID: "t2", ServiceID: svc, SpecVersion: 1, Slot: 2, DesiredState: api.TaskRunning,
		Status: api.TaskStatus{State: api.TaskPending}, Networks: att("10.10.0.4/24")}
	mustApply(raftstore.WriteTasks{Create: []*api.Task{t2}, At: now})
	mustApply(raftstore.AssignTasks{Assignments: []raftstore.Assignment{{TaskID: "t2", NodeID: "n2"}}, At: now})
	next := recvView(t, stream)
	if next.GetVersion() <= first.GetVersion() || len(next.GetEndpoints()) != 2 || next.GetEndpoints()[1].GetNodeAddr() != "10.213.7.12" {
		t.Fatalf("next view = %v, want a newer one with t2 on 10.213.7.12", next)
	}
}
