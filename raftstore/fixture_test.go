package raftstore

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	gib  = int64(1) << 30
	cpu1 = int64(1e9)
)

func testService(id, name string, replicas uint64) *api.Service {
	return &api.Service{
		ID: id,
		Spec: api.ServiceSpec{
			Name: name, Image: "busybox", Mode: api.ModeReplicated, Replicas: replicas,
			Labels:    map[string]string{"tier": "front"},
			Env:       []string{"A=1"},
			Resources: api.ResourceRequirements{Reservations: api.Resources{NanoCPUs: cpu1, MemoryBytes: gib}},
		},
		CreatedAt: t0, UpdatedAt: t0,
	}
}

func testNode(id string, status api.NodeStatus, avail api.NodeAvailability) *api.Node {
	return &api.Node{
		ID: id, Hostname: "host-" + id, Addr: "10.0.0.1", Role: api.RoleWorker,
		Availability: avail, Status: status,
		Resources: api.Resources{NanoCPUs: 4 * cpu1, MemoryBytes: 4 * gib},
		Labels:    map[string]string{"zone": "a"},
		UpdatedAt: t0,
	}
}

func testTask(id string, svc *api.Service, slot uint64) *api.Task {
	return &api.Task{
		ID: id, ServiceID: svc.ID, ServiceName: svc.Spec.Name, Slot: slot,
		SpecVersion: 1, DesiredState: api.TaskRunning,
		Status:    api.TaskStatus{State: api.TaskNew, Timestamp: t0},
		CreatedAt: t0, UpdatedAt: t0,
	}
}

// fixture builds a small state: nodes n1 (ready), n2 (down), n3 (drain);
// service web (svc-web) with tasks t1, t2 (new) and t3 (running on n1).
func fixture(t testing.TB) *State {
	t.Helper()
	s := NewState()
	web := testService("svc-web", "web", 3)
	t3 := testTask("t3", web, 3)
	t3.NodeID = "n1"
	t3.Status.State = api.TaskRunning
	cmds := []Command{
		SetCluster{Cluster: api.ClusterInfo{ID: "c1", CreatedAt: t0}},
		UpsertManager{Manager: api.Manager{ID: "m1", RaftAddr: "127.0.0.1:1", Addr: "127.0.0.1:2"}},
		UpsertNode{Node: testNode("n1", api.NodeReady, api.AvailabilityActive)},
		UpsertNode{Node: testNode("n2", api.NodeDown, api.AvailabilityActive)},
		UpsertNode{Node: testNode("n3", api.NodeReady, api.AvailabilityDrain)},
		CreateService{Service: web},
		WriteTasks{Create: []*api.Task{testTask("t1", web, 1), testTask("t2", web, 2), t3}, At: t0},
	}
	for i, c := range cmds {
		if _, _, err := s.apply(0, c); err != nil {
			t.Fatalf("fixture command %d (%T): %v", i, c, err)
		}
	}
	return s
}

// dump renders everything a view holds, for comparisons.
func dump(t testing.TB, v *View) string {
	t.Helper()
	b, err := json.MarshalIndent(map[string]any{
		"cluster":  v.Cluster(),
		"managers": v.Managers(),
		"nodes":    v.Nodes(),
		"services": v.Services(),
		"tasks":    v.Tasks(),
		"requests": v.requests(),
		"specs":    v.serviceSpecs(),
		"secrets":  v.Secrets(api.KindSecret),
		"configs":  v.Secrets(api.KindConfig),
	}, "", " ")
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	return string(b)
}

func taskState(v *View, id string) string {
	task := v.Task(id)
	if task == nil {
		return "<missing>"
	}
	return fmt.Sprintf("%s/%s@%s", task.Status.State, task.DesiredState, task.NodeID)
}
