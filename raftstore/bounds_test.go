package raftstore

import (
	"bytes"
	"io"
	"math"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

func settings(n uint64) *api.ClusterSettings { return &api.ClusterSettings{MaxReplicas: n} }

func TestApplyClusterSettings(t *testing.T) {
	tooMany := testService("svc-web", "web", api.MaxReplicasCeiling+1)
	runApplyCases(t, []applyCase{
		{name: "set max-replicas", cmd: SetCluster{Cluster: api.ClusterInfo{ID: "c1"}, Settings: settings(500), At: t0.Add(1)},
			check: func(t *testing.T, v *View, value any) {
				c := v.Cluster()
				if c.Settings.ReplicaLimit() != 500 || !c.CreatedAt.Equal(t0) || !c.UpdatedAt.Equal(t0.Add(1)) {
					t.Fatalf("cluster = %+v", c)
				}
				if got, ok := value.(api.ClusterInfo); !ok || got.Settings.MaxReplicas != 500 {
					t.Fatalf("value = %#v", value)
				}
			}},
		{name: "settings of another cluster", cmd: SetCluster{Cluster: api.ClusterInfo{ID: "c2"}, Settings: settings(5)},
			wantErr: ErrNotFound, errText: `"c2"`},
		{name: "settings over the ceiling", cmd: SetCluster{Cluster: api.ClusterInfo{ID: "c1"}, Settings: settings(math.MaxUint64)},
			wantErr: ErrInvalid, errText: "18446744073709551615"},
		{name: "settings below a service", cmd: SetCluster{Cluster: api.ClusterInfo{ID: "c1"}, Settings: settings(2)},
			wantErr: ErrInvalid, errText: `"web" has 3 replicas`},
		{name: "create over the ceiling", cmd: CreateService{Service: testService("svc-x", "x", math.MaxUint64)},
			wantErr: ErrInvalid, errText: "18446744073709551615"},
		{name: "update over the ceiling", cmd: UpdateService{ID: "svc-web", Spec: tooMany.Spec},
			wantErr: ErrInvalid, errText: "100001"},
	})
}

func TestClusterSettingsBeforeBootstrap(t *testing.T) {
	s := NewState()
	if _, _, err := s.apply(0, SetCluster{Cluster: api.ClusterInfo{ID: "c1"}, Settings: settings(5)}); err == nil {
		t.Fatal("settings accepted before the cluster has an identity")
	}
	if s.Read().Cluster().ID != "" {
		t.Fatal("settings created a cluster")
	}
	// Bootstrap, set, and bootstrap again (a new leader's bookkeeping):
	// the settings stay.
	for _, c := range []Command{
		SetCluster{Cluster: api.ClusterInfo{ID: "c1"}},
		SetCluster{Cluster: api.ClusterInfo{ID: "c1"}, Settings: settings(7)},
		SetCluster{Cluster: api.ClusterInfo{ID: "c1"}},
	} {
		if _, _, err := s.apply(0, c); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Read().Cluster().Settings.ReplicaLimit(); got != 7 {
		t.Fatalf("max-replicas after a second bootstrap = %d, want 7", got)
	}
}

// TestClusterSettingsSurviveSnapshot: the setting is part of the state a
// new manager restores.
func TestClusterSettingsSurviveSnapshot(t *testing.T) {
	src := &fsm{state: fixture(t)}
	if _, _, err := src.state.apply(0, SetCluster{Cluster: api.ClusterInfo{ID: "c1"}, Settings: settings(42)}); err != nil {
		t.Fatal(err)
	}
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	dst := &fsm{state: NewState()}
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got := dst.state.Read().Cluster().Settings.ReplicaLimit(); got != 42 {
		t.Fatalf("restored max-replicas = %d, want 42", got)
	}
}

// TestAssignDoesNotWrapAround: a node whose tasks reserve more than int64
// holds in total (a state no request can make any more) has no room left;
// the sum of reservations saturates instead of wrapping around to a small
// number that would leave room.
func TestAssignDoesNotWrapAround(t *testing.T) {
	s := NewState()
	hog := testService("svc-hog", "hog", 3)
	hog.Spec.Resources.Reservations = api.Resources{NanoCPUs: math.MaxInt64, MemoryBytes: math.MaxInt64}
	small := testService("svc-small", "small", 1)
	small.Spec.Resources.Reservations = api.Resources{NanoCPUs: 1, MemoryBytes: 1}
	node := testNode("n1", api.NodeReady, api.AvailabilityActive)
	node.Resources = api.Resources{NanoCPUs: math.MaxInt64, MemoryBytes: math.MaxInt64}
	var running []*api.Task
	for slot := uint64(1); slot <= 3; slot++ {
		task := testTask("hog-"+string(rune('0'+slot)), hog, slot)
		task.NodeID, task.Status.State = "n1", api.TaskRunning
		running = append(running, task)
	}
	for i, c := range []Command{
		UpsertNode{Node: node}, CreateService{Service: hog}, CreateService{Service: small},
		WriteTasks{Create: append(running, testTask("small-1", small, 1)), At: t0},
	} {
		if _, _, err := s.apply(0, c); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	_, value, err := s.apply(0, AssignTasks{Assignments: []Assignment{{TaskID: "small-1", NodeID: "n1"}}, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	if res := value.(AssignResult); res.Assigned != 0 || len(res.Refused) != 1 {
		t.Fatalf("assign = %+v; want small-1 refused: the node is full", res)
	}
}
