package raftstore

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
)

type applyCase struct {
	name    string
	cmd     Command
	wantErr error  // sentinel the error must wrap
	errText string // substring naming the value
	check   func(t *testing.T, v *View, value any)
}

func runApplyCases(t *testing.T, cases []applyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := fixture(t)
			before := dump(t, s.Read())
			changed := s.Changed()
			_, value, err := s.apply(0, tc.cmd)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.errText) {
					t.Errorf("err %q does not name %q", err, tc.errText)
				}
				if after := dump(t, s.Read()); after != before {
					t.Errorf("rejected command changed the state:\nbefore %s\nafter %s", before, after)
				}
				select {
				case <-changed:
					t.Errorf("Changed fired for a rejected command")
				default:
				}
				return
			}
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if tc.check != nil {
				tc.check(t, s.Read(), value)
			}
		})
	}
}

func TestApplyServices(t *testing.T) {
	upd := testService("svc-web", "web", 5).Spec
	runApplyCases(t, []applyCase{
		{name: "create", cmd: CreateService{Service: testService("svc-api", "api", 1)},
			check: func(t *testing.T, v *View, value any) {
				s := v.ServiceByName("api")
				if s == nil || s.ID != "svc-api" || s.SpecVersion != 1 {
					t.Fatalf("service api = %+v", s)
				}
				if value.(*api.Service) != s {
					t.Errorf("response value is not the stored service")
				}
				if got := len(v.Services()); got != 2 {
					t.Errorf("services = %d, want 2", got)
				}
			}},
		{name: "create name taken", cmd: CreateService{Service: testService("svc-x", "web", 1)},
			wantErr: ErrAlreadyExists, errText: `service "web": already exists`},
		{name: "create name taken in other case", cmd: CreateService{Service: testService("svc-x", "WEB", 1)},
			wantErr: ErrAlreadyExists, errText: `service "WEB": already exists`},
		{name: "create upper case", cmd: CreateService{Service: testService("svc-b", "demo_B", 1)},
			check: func(t *testing.T, v *View, _ any) {
				if s := v.ServiceByName("demo_B"); s == nil || s.Spec.Name != "demo_B" {
					t.Fatalf("ServiceByName(demo_B) = %+v", s)
				}
				if s := v.ServiceByName("DEMO_b"); s == nil || s.ID != "svc-b" {
					t.Fatalf("ServiceByName(DEMO_b) = %+v, want the same service", s)
				}
			}},
		{name: "create id taken", cmd: CreateService{Service: testService("svc-web", "other", 1)},
			wantErr: ErrAlreadyExists, errText: `"svc-web"`},
		{name: "create empty name", cmd: CreateService{Service: testService("svc-x", "", 1)},
			wantErr: ErrInvalid, errText: `"svc-x"`},
		{name: "create nil", cmd: CreateService{}, wantErr: ErrInvalid, errText: "service"},
		{name: "update", cmd: UpdateService{ID: "svc-web", Spec: upd, ExpectedVersion: 1, At: t0.Add(1)},
			check: func(t *testing.T, v *View, _ any) {
				s := v.Service("svc-web")
				if s.SpecVersion != 2 || s.Spec.Replicas != 5 || s.PreviousSpec == nil || s.PreviousSpec.Replicas != 3 {
					t.Fatalf("updated service = %+v", s)
				}
				if !s.UpdatedAt.Equal(t0.Add(1)) {
					t.Errorf("UpdatedAt = %v", s.UpdatedAt)
				}
			}},
		{name: "update missing", cmd: UpdateService{ID: "nope", Spec: upd},
			wantErr: ErrNotFound, errText: `"nope"`},
		{name: "update conflict", cmd: UpdateService{ID: "svc-web", Spec: upd, ExpectedVersion: 7},
			wantErr: ErrConflict, errText: `"web"`},
		{name: "update rename", cmd: UpdateService{ID: "svc-web", Spec: testService("", "other", 1).Spec},
			wantErr: ErrInvalid, errText: `"other"`},
		{name: "remove", cmd: RemoveService{ID: "svc-web", At: t0.Add(2)},
			check: func(t *testing.T, v *View, _ any) {
				if v.Service("svc-web") != nil {
					t.Fatal("service still there")
				}
				if got := len(v.TasksByDesiredState(api.TaskRemove)); got != 3 {
					t.Errorf("tasks desired remove = %d, want 3", got)
				}
			}},
		{name: "remove missing", cmd: RemoveService{ID: "nope"}, wantErr: ErrNotFound, errText: `"nope"`},
	})
}

func TestApplyNodes(t *testing.T) {
	refresh := testNode("n3", api.NodeReady, "")
	refresh.Hostname, refresh.Labels = "renamed", map[string]string{"zone": "b"}
	badRole := testNode("n9", api.NodeReady, "")
	badRole.Role = "boss"
	runApplyCases(t, []applyCase{
		{name: "register", cmd: UpsertNode{Node: &api.Node{ID: "n9", Hostname: "h9"}},
			check: func(t *testing.T, v *View, _ any) {
				n := v.Node("n9")
				if n.Availability != api.AvailabilityActive || n.Status != api.NodeUnknown || n.Role != api.RoleWorker || n.Version != 1 {
					t.Fatalf("new node = %+v", n)
				}
			}},
		{name: "refresh keeps operator fields", cmd: UpsertNode{Node: refresh},
			check: func(t *testing.T, v *View, _ any) {
				n := v.Node("n3")
				if n.Hostname != "renamed" || n.Availability != api.AvailabilityDrain || n.Labels["zone"] != "a" || n.Version != 2 {
					t.Fatalf("refreshed node = %+v", n)
				}
			}},
		{name: "register bad role", cmd: UpsertNode{Node: badRole}, wantErr: ErrInvalid, errText: `role "boss"`},
		{name: "register no id", cmd: UpsertNode{Node: &api.Node{Hostname: "h"}}, wantErr: ErrInvalid, errText: `"h"`},
		{name: "operator update", cmd: UpdateNode{ID: "n1", Availability: api.AvailabilityPause,
			LabelAdd: map[string]string{"disk": "ssd"}, LabelRm: []string{"zone"}, ExpectedVersion: 1, At: t0.Add(1)},
			check: func(t *testing.T, v *View, _ any) {
				n := v.Node("n1")
				want := map[string]string{"disk": "ssd"}
				if n.Availability != api.AvailabilityPause || !reflect.DeepEqual(n.Labels, want) || n.Version != 2 {
					t.Fatalf("updated node = %+v", n)
				}
			}},
		{name: "operator update conflict", cmd: UpdateNode{ID: "n1", Availability: api.AvailabilityPause, ExpectedVersion: 5},
			wantErr: ErrConflict, errText: `"n1"`},
		{name: "operator update bad availability", cmd: UpdateNode{ID: "n1", Availability: "gone"},
			wantErr: ErrInvalid, errText: `"gone"`},
		{name: "operator update missing", cmd: UpdateNode{ID: "n9"}, wantErr: ErrNotFound, errText: `"n9"`},
		{name: "status down", cmd: SetNodeStatus{ID: "n1", Status: api.NodeDown, Message: "gossip: dead", At: t0.Add(1)},
			check: func(t *testing.T, v *View, _ any) {
				if n := v.Node("n1"); n.Status != api.NodeDown || n.StatusMessage != "gossip: dead" {
					t.Fatalf("node = %+v", n)
				}
				if got := taskState(v, "t3"); got != "running/running@n1" {
					t.Errorf("t3 = %s: a node going down must not touch its tasks", got)
				}
			}},
		{name: "status restarting", cmd: SetNodeStatus{ID: "n1", Status: api.NodeRestarting, Message: "back soon",
			RestartDeadline: t0.Add(30 * time.Second), ExpectedVersion: 1, At: t0.Add(1)},
			check: func(t *testing.T, v *View, _ any) {
				n := v.Node("n1")
				if n.Status != api.NodeRestarting || !n.RestartDeadline.Equal(t0.Add(30*time.Second)) || n.Version != 2 {
					t.Fatalf("node = %+v", n)
				}
				if got := taskState(v, "t3"); got != "running/running@n1" {
					t.Errorf("t3 = %s: a restarting node keeps its tasks", got)
				}
			}},
		{name: "status restarting without deadline", cmd: SetNodeStatus{ID: "n1", Status: api.NodeRestarting, At: t0.Add(1)},
			wantErr: ErrInvalid, errText: "restart deadline"},
		{name: "status restarting deadline in the past", cmd: SetNodeStatus{ID: "n1", Status: api.NodeRestarting,
			RestartDeadline: t0, At: t0.Add(time.Second)}, wantErr: ErrInvalid, errText: "is not after"},
		{name: "status changed since read", cmd: SetNodeStatus{ID: "n1", Status: api.NodeDown, ExpectedVersion: 7},
			wantErr: ErrConflict, errText: "expected 7"},
		{name: "register restarting", cmd: UpsertNode{Node: testNode("n9", api.NodeRestarting, "")}, wantErr: ErrInvalid, errText: "restart notice"},
		{name: "status bad", cmd: SetNodeStatus{ID: "n1", Status: "sleepy"}, wantErr: ErrInvalid, errText: `"sleepy"`},
		{name: "status missing", cmd: SetNodeStatus{ID: "n9", Status: api.NodeDown}, wantErr: ErrNotFound, errText: `"n9"`},
		{name: "remove", cmd: RemoveNode{ID: "n2"},
			check: func(t *testing.T, v *View, _ any) {
				if v.Node("n2") != nil || len(v.Nodes()) != 2 {
					t.Fatalf("nodes = %v", v.Nodes())
				}
			}},
		{name: "remove missing", cmd: RemoveNode{ID: "n9"}, wantErr: ErrNotFound, errText: `"n9"`},
	})
}

// TestRestartHoldEnds: a restarting node whose agent registers again is
// ready, and its deadline is gone; any other status clears it too.
func TestRestartHoldEnds(t *testing.T) {
	for _, end := range []Command{
		UpsertNode{Node: testNode("n1", api.NodeReady, "")},
		SetNodeStatus{ID: "n1", Status: api.NodeDown, Message: "hold passed", At: t0.Add(time.Minute)},
	} {
		s := fixture(t)
		hold := SetNodeStatus{ID: "n1", Status: api.NodeRestarting, RestartDeadline: t0.Add(30 * time.Second), At: t0}
		if _, _, err := s.apply(0, hold); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.apply(0, end); err != nil {
			t.Fatal(err)
		}
		if n := s.Read().Node("n1"); n.Status == api.NodeRestarting || !n.RestartDeadline.IsZero() {
			t.Errorf("after %T the node is %s with deadline %s, want no hold", end, n.Status, n.RestartDeadline)
		}
	}
}

func TestApplyClusterAndManagers(t *testing.T) {
	runApplyCases(t, []applyCase{
		{name: "cluster again same id", cmd: SetCluster{Cluster: api.ClusterInfo{ID: "c1"}},
			check: func(t *testing.T, v *View, _ any) {
				if v.Cluster().ID != "c1" || !v.Cluster().CreatedAt.Equal(t0) {
					t.Fatalf("cluster = %+v", v.Cluster())
				}
			}},
		{name: "cluster other id", cmd: SetCluster{Cluster: api.ClusterInfo{ID: "c2"}}, wantErr: ErrAlreadyExists, errText: `"c1"`},
		{name: "cluster empty id", cmd: SetCluster{}, wantErr: ErrInvalid, errText: "cluster id"},
		{name: "manager add", cmd: UpsertManager{Manager: api.Manager{ID: "m0", RaftAddr: "127.0.0.1:3"}},
			check: func(t *testing.T, v *View, _ any) {
				ms := v.Managers()
				if len(ms) != 2 || ms[0].ID != "m0" || ms[1].ID != "m1" {
					t.Fatalf("managers = %+v", ms)
				}
			}},
		{name: "manager empty id", cmd: UpsertManager{}, wantErr: ErrInvalid, errText: "manager id"},
		{name: "manager remove", cmd: RemoveManager{ID: "m1"},
			check: func(t *testing.T, v *View, _ any) {
				if _, ok := v.Manager("m1"); ok {
					t.Fatal("manager m1 still there")
				}
			}},
		{name: "manager remove missing", cmd: RemoveManager{ID: "m9"}, wantErr: ErrNotFound, errText: `"m9"`},
		{name: "nil command", cmd: nil, wantErr: ErrInvalid, errText: "nil"},
	})
}

// Service names are unique (in any case) within one transaction too:
// commands applied together see the names the ones before them wrote or
// freed.
func TestServiceNamesInOneTransaction(t *testing.T) {
	tests := []struct {
		name string
		cmds []Command
		want []error // per command: nil, or the error it wraps
	}{
		{"same name twice", []Command{
			CreateService{Service: testService("s1", "web", 1)},
			CreateService{Service: testService("s2", "WEB", 1)},
		}, []error{nil, ErrAlreadyExists}},
		{"name freed by a removal", []Command{
			CreateService{Service: testService("s1", "web", 1)},
			RemoveService{ID: "s1"},
			CreateService{Service: testService("s2", "Web", 1)},
		}, []error{nil, nil, nil}},
		{"name of a stored service freed here", []Command{
			RemoveService{ID: "s0"},
			CreateService{Service: testService("s2", "db", 1)},
			CreateService{Service: testService("s3", "DB", 1)},
		}, []error{nil, nil, ErrAlreadyExists}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState()
			if _, _, err := s.apply(1, CreateService{Service: testService("s0", "db", 1)}); err != nil {
				t.Fatal(err)
			}
			entries := make([]entry, len(tt.cmds))
			for i, cmd := range tt.cmds {
				entries[i] = entry{index: uint64(i + 2), cmd: cmd}
			}
			for i, r := range s.applyEntries(entries) {
				if !errors.Is(r.err, tt.want[i]) || (tt.want[i] == nil && r.err != nil) {
					t.Errorf("command %d (%T): %v, want %v", i, tt.cmds[i], r.err, tt.want[i])
				}
			}
		})
	}
}
