package controlapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

func TestToStatus(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"not found", fmt.Errorf("service %q: %w", "web", raftstore.ErrNotFound), codes.NotFound},
		{"exists", fmt.Errorf("service %q: %w", "web", raftstore.ErrAlreadyExists), codes.AlreadyExists},
		{"raftstore invalid", fmt.Errorf("x: %w", raftstore.ErrInvalid), codes.InvalidArgument},
		{"spec invalid", api.ValidateServiceSpec(&api.ServiceSpec{Name: "Bad Name", Mode: api.ModeReplicated}), codes.InvalidArgument},
		{"ambiguous", fmt.Errorf("x is %w", ErrAmbiguous), codes.InvalidArgument},
		{"conflict", fmt.Errorf("x: %w", raftstore.ErrConflict), codes.FailedPrecondition},
		{"precondition", fmt.Errorf("x: %w", ErrPrecondition), codes.FailedPrecondition},
		{"not leader", fmt.Errorf("x: %w", raftstore.ErrNotLeader), codes.Unavailable},
		{"no leader", fmt.Errorf("x: %w", raftstore.ErrNoLeader), codes.Unavailable},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded},
		{"status passes", status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied},
		{"other", errors.New("disk on fire"), codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toStatus(tt.err)
			if status.Code(got) != tt.want {
				t.Fatalf("code = %v, want %v (err %v)", status.Code(got), tt.want, got)
			}
			if msg := status.Convert(got).Message(); msg != status.Convert(tt.err).Message() && msg != tt.err.Error() {
				t.Fatalf("message %q lost the error text %q", msg, tt.err.Error())
			}
		})
	}
	if toStatus(nil) != nil {
		t.Fatal("toStatus(nil) != nil")
	}
}

func TestParseFilters(t *testing.T) {
	tests := []struct {
		in      []string
		want    eventFilter
		wantErr string
	}{
		{in: nil, want: eventFilter{}},
		{in: []string{"type=task", "service=web", "node=n1"}, want: eventFilter{kind: "task", service: "web", node: "n1"}},
		{in: []string{"type=volume"}, wantErr: `filter "type=volume"`},
		{in: []string{"colour=red"}, wantErr: `unknown key "colour"`},
		{in: []string{"service"}, wantErr: `filter "service"`},
		{in: []string{"service="}, wantErr: `filter "service="`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.in, ","), func(t *testing.T) {
			got, err := parseFilters(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || status.Code(toStatus(err)) != codes.InvalidArgument {
					t.Fatalf("err = %v, want InvalidArgument containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestEventFilterMatch(t *testing.T) {
	svc := raftstore.Event{Kind: "service", Action: "create", Service: &api.Service{ID: "abc123", Spec: api.ServiceSpec{Name: "web"}}}
	task := raftstore.Event{Kind: "task", Action: "update", Task: &api.Task{ID: "t1", ServiceID: "abc123", ServiceName: "web", NodeID: "node9"}}
	node := raftstore.Event{Kind: "node", Action: "update", Node: &api.Node{ID: "node9", Hostname: "h9"}}
	other := raftstore.Event{Kind: "task", Action: "update", Task: &api.Task{ID: "t2", ServiceID: "zzz", ServiceName: "db"}}
	tests := []struct {
		name string
		f    eventFilter
		want [4]bool // svc, task, node, other
	}{
		{"none", eventFilter{}, [4]bool{true, true, true, true}},
		{"type", eventFilter{kind: "task"}, [4]bool{false, true, false, true}},
		{"service by name", eventFilter{service: "web"}, [4]bool{true, true, false, false}},
		{"service by id prefix", eventFilter{service: "abc"}, [4]bool{true, true, false, false}},
		{"node by hostname", eventFilter{node: "h9"}, [4]bool{false, false, true, false}},
		{"node by id", eventFilter{node: "node9"}, [4]bool{false, true, true, false}},
		{"service and type", eventFilter{kind: "service", service: "web"}, [4]bool{true, false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, ev := range []raftstore.Event{svc, task, node, other} {
				if got := tt.f.match(ev); got != tt.want[i] {
					t.Errorf("event %d (%s): match = %v, want %v", i, ev.Kind, got, tt.want[i])
				}
			}
		})
	}
}

func TestToEvent(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := toEvent(raftstore.Event{Index: 7, Kind: "task", Action: "update", Task: &api.Task{
		ID: "t1", ServiceName: "web", Slot: 2, NodeID: "n1", DesiredState: api.TaskRunning,
		Status: api.TaskStatus{State: api.TaskFailed, Err: "exit 1"}, UpdatedAt: at,
	}})
	if ev.GetId() != "t1" || ev.GetName() != "web.2" || ev.GetType() != "task" || ev.GetAction() != "update" {
		t.Fatalf("event = %v", ev)
	}
	if !ev.GetTime().AsTime().Equal(at) {
		t.Fatalf("time = %v, want %v", ev.GetTime().AsTime(), at)
	}
	want := map[string]string{"index": "7", "service": "web", "node": "n1", "state": "failed", "desired_state": "running", "err": "exit 1"}
	for k, v := range want {
		if ev.GetAttributes()[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, ev.GetAttributes()[k], v)
		}
	}
}

func TestDiffSpecs(t *testing.T) {
	old := &api.ServiceSpec{Name: "web", Image: "busybox:1", Mode: api.ModeReplicated, Replicas: 2,
		Env: []string{"A=1"}, Labels: map[string]string{"team": "a"}}
	upd := old.Clone()
	upd.Image = "busybox:2"
	upd.Replicas = 3
	upd.Env = []string{"A=1", "B=2"}
	upd.Labels = map[string]string{"team": "b"}
	upd.Resources.Limits.MemoryBytes = 64 << 20
	got := map[string][2]string{}
	for _, c := range diffSpecs(old, upd) {
		got[c.GetField()] = [2]string{c.GetOld(), c.GetNew()}
	}
	want := map[string][2]string{
		"image":                         {"busybox:1", "busybox:2"},
		"replicas":                      {"2", "3"},
		"env":                           {`["A=1"]`, `["A=1","B=2"]`},
		"labels.team":                   {"a", "b"},
		"resources.limits.memory_bytes": {"", "67108864"},
	}
	if len(got) != len(want) {
		t.Fatalf("changes = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	if d := diffSpecs(old, old.Clone()); len(d) != 0 {
		t.Fatalf("diff of equal specs = %v", d)
	}
	if specReplacesTasks(old, &api.ServiceSpec{Name: "web", Image: "busybox:1", Mode: api.ModeReplicated, Replicas: 9,
		Env: []string{"A=1"}, Labels: map[string]string{"team": "a"}}) {
		t.Fatal("a replica change alone must not replace tasks")
	}
	if !specReplacesTasks(old, upd) {
		t.Fatal("an image change must replace tasks")
	}
}

func TestTaskCountsAndNodeLoad(t *testing.T) {
	res := api.Resources{NanoCPUs: 5e8, MemoryBytes: 1 << 20}
	state := raftstore.NewState()
	svc := &api.Service{ID: "svc-web", Spec: api.ServiceSpec{Name: "web", Image: "busybox",
		Resources: api.ResourceRequirements{Reservations: res}}}
	if _, err := raftstore.NewLocalApplier(state).Apply(t.Context(), raftstore.CreateService{Service: svc}); err != nil {
		t.Fatal(err)
	}
	task := func(desired, state api.TaskState) *api.Task {
		return &api.Task{ServiceID: svc.ID, SpecVersion: 1, DesiredState: desired, Status: api.TaskStatus{State: state}}
	}
	tasks := []*api.Task{
		task(api.TaskRunning, api.TaskRunning),
		task(api.TaskRunning, api.TaskAssigned),
		task(api.TaskShutdown, api.TaskRunning),
		task(api.TaskRunning, api.TaskFailed),
	}
	rep := &api.Service{Spec: api.ServiceSpec{Mode: api.ModeReplicated, Replicas: 5}}
	if r, d := taskCounts(rep, tasks); r != 1 || d != 5 {
		t.Fatalf("replicated: running %d desired %d, want 1 and 5", r, d)
	}
	glob := &api.Service{Spec: api.ServiceSpec{Mode: api.ModeGlobal}}
	if r, d := taskCounts(glob, tasks); r != 1 || d != 2 {
		t.Fatalf("global: running %d desired %d, want 1 and 2", r, d)
	}
	sum, n := nodeLoad(state.Read(), tasks)
	if n != 3 || sum != (api.Resources{NanoCPUs: 15e8, MemoryBytes: 3 << 20}) {
		t.Fatalf("node load = %v over %d tasks, want 3 tasks", sum, n)
	}
}

func TestRetrySafe(t *testing.T) {
	uncertain := fmt.Errorf("%w: %w: leadership lost", raftstore.ErrCommitUncertain, raftstore.ErrNotLeader)
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"not proposed, another leader", fmt.Errorf("verify leader: %w", raftstore.ErrNotLeader), true},
		{"not proposed, no leader", fmt.Errorf("x: %w", raftstore.ErrNoLeader), true},
		{"uncertain, no request id", uncertain, false},
		{"uncertain request", idempotent{uncertain}, true},
		{"uncertain request, wrapped again", fmt.Errorf("update: %w", idempotent{uncertain}), true},
		{"uncertain, caller gave up", idempotent{fmt.Errorf("%w: %w", raftstore.ErrCommitUncertain, context.Canceled)}, false},
		{"domain error", fmt.Errorf("x: %w", raftstore.ErrConflict), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retrySafe(tt.err); got != tt.want {
				t.Errorf("retrySafe(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
