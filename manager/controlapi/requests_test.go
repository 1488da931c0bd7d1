package controlapi_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/controlapi"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// fakeLostAnswers is a fake Applier at the seam in front of a real Raft
// member. While armed, it answers the next command as a leader that lost
// its leadership while the entry was in flight would: with
// ErrCommitUncertain and ErrNoLeader, after committing the entry (commit
// true) or without sending it (commit false).
type fakeLostAnswers struct {
	next raftstore.Applier

	mu     sync.Mutex
	armed  bool
	commit bool
	calls  int
}

func (f *fakeLostAnswers) arm(commit bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed, f.commit, f.calls = true, commit, 0
}

func (f *fakeLostAnswers) Apply(ctx context.Context, cmd raftstore.Command) (raftstore.Response, error) {
	f.mu.Lock()
	lose, commit := f.armed, f.commit
	f.armed = false
	f.calls++
	f.mu.Unlock()
	if !lose {
		return f.next.Apply(ctx, cmd)
	}
	if commit {
		if _, err := f.next.Apply(ctx, cmd); err != nil {
			return raftstore.Response{}, fmt.Errorf("fake: the commit to lose failed: %w", err)
		}
	}
	return raftstore.Response{}, fmt.Errorf("%w: %w: leadership lost while committing log (fake)",
		raftstore.ErrCommitUncertain, raftstore.ErrNoLeader)
}

// lostAnswerServer is a control API server over a one-member Raft cluster
// whose commits go through a fakeLostAnswers.
func lostAnswerServer(t *testing.T) (*controlapi.Server, *raftstore.Node, *fakeLostAnswers) {
	t.Helper()
	node, err := raftstore.Open(raftstore.Config{
		DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: true,
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond, ApplyTimeout: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	managertest.WaitFor(t, waitTimeout, func() error {
		if !node.IsLeader() {
			return errors.New("the one member does not lead yet")
		}
		return nil
	})
	fake := &fakeLostAnswers{next: node}
	s := controlapi.New(controlapi.Config{ID: node.ID(), Raft: node, Applier: fake})
	t.Cleanup(func() { s.Close() })
	return s, node, fake
}

// TestLostAnswerAppliedOnce: a write whose commit succeeded but whose
// answer was lost is retried by the control API (it cannot tell that from
// a commit that failed) and must change the state once.
func TestLostAnswerAppliedOnce(t *testing.T) {
	s, node, fake := lostAnswerServer(t)
	ctx := t.Context()
	state := node.State()
	if _, err := node.Apply(ctx, raftstore.UpsertNode{Node: &api.Node{
		ID: "n1-abcdef", Hostname: "alpha", Role: api.RoleWorker, Status: api.NodeDown, Availability: api.AvailabilityActive,
	}}); err != nil {
		t.Fatal(err)
	}
	for _, commit := range []bool{true, false} {
		t.Run(map[bool]string{true: "committed", false: "not committed"}[commit], func(t *testing.T) {
			name := map[bool]string{true: "web", false: "api"}[commit]
			steps := []struct {
				name  string
				call  func() error
				check func(v *raftstore.View) error
			}{
				{"create", func() error {
					resp, err := s.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: spec(name)})
					if err == nil && resp.GetService().GetId() != state.Read().ServiceByName(name).ID {
						return fmt.Errorf("answered with service %s, the state holds %s", resp.GetService().GetId(), state.Read().ServiceByName(name).ID)
					}
					return err
				}, func(v *raftstore.View) error { return wantService(v, name, 1, 2, 1) }},
				{"update without expected version", func() error {
					upd := spec(name)
					upd.Image = "busybox:1.36"
					resp, err := s.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: name, Spec: upd})
					if err == nil && resp.GetService().GetSpecVersion() != 2 {
						return fmt.Errorf("answered with version %d, want 2", resp.GetService().GetSpecVersion())
					}
					return err
				}, func(v *raftstore.View) error { return wantService(v, name, 2, 2, 1) }},
				{"scale", func() error {
					_, err := s.ScaleService(ctx, &shoalpb.ScaleServiceRequest{Service: name, Replicas: 5})
					return err
				}, func(v *raftstore.View) error { return wantService(v, name, 3, 5, 1) }},
				{"update node", func() error {
					_, err := s.UpdateNode(ctx, &shoalpb.UpdateNodeRequest{Node: "alpha", LabelAdd: map[string]string{name: "x"}})
					return err
				}, func(v *raftstore.View) error {
					if n := v.Node("n1-abcdef"); n.Labels[name] != "x" {
						return fmt.Errorf("node labels %v, want %s=x", n.Labels, name)
					}
					return nil
				}},
				{"remove", func() error {
					_, err := s.RemoveService(ctx, &shoalpb.RemoveServiceRequest{Service: name})
					return err
				}, func(v *raftstore.View) error { return wantService(v, name, 0, 0, 0) }},
			}
			for _, st := range steps {
				before := state.Read().Index()
				fake.arm(commit)
				if err := st.call(); err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				if fake.calls < 2 && !commit {
					t.Fatalf("%s: the lost commit was not retried (%d calls)", st.name, fake.calls)
				}
				if err := st.check(state.Read()); err != nil {
					t.Fatalf("%s, with a lost answer: %v", st.name, err)
				}
				t.Logf("%s: %d applier calls, index %d → %d", st.name, fake.calls, before, state.Read().Index())
			}
		})
	}
	// The node is down: removing it is allowed, and it is removed once.
	fake.arm(true)
	if _, err := s.RemoveNode(ctx, &shoalpb.RemoveNodeRequest{Node: "alpha"}); err != nil {
		t.Fatalf("remove node with a lost answer: %v", err)
	}
	if n := len(state.Read().Nodes()); n != 0 {
		t.Fatalf("%d nodes after remove", n)
	}
}

// wantService checks the one service named name, or (services 0) that
// there is none.
func wantService(v *raftstore.View, name string, version, replicas uint64, services int) error {
	var named []*api.Service
	for _, svc := range v.Services() {
		if svc.Spec.Name == name {
			named = append(named, svc)
		}
	}
	switch {
	case len(named) != services:
		return fmt.Errorf("%d services named %s, want %d", len(named), name, services)
	case services == 0:
		return nil
	case named[0].SpecVersion != version || named[0].Spec.Replicas != replicas:
		return fmt.Errorf("service %s at version %d with %d replicas, want version %d with %d",
			name, named[0].SpecVersion, named[0].Spec.Replicas, version, replicas)
	}
	return nil
}

// TestRequestIDAcrossManagers: a client that sends one write twice with
// the same request ID, once to the leader and once through a follower
// (as shoalctl does when it loses an answer and tries the next manager),
// gets the same answer twice and changes the state once.
func TestRequestIDAcrossManagers(t *testing.T) {
	c, f := cluster(t)
	leader := c.WaitLeader(waitTimeout)
	ctx := t.Context()
	n := 0
	send := func(call func(ctx context.Context, cl shoalpb.ControlClient) (proto.Message, error)) (proto.Message, proto.Message) {
		t.Helper()
		n++
		rctx := metadata.AppendToOutgoingContext(ctx, shoalpb.RequestIDKey, fmt.Sprintf("test-request-%d", n))
		first, err := call(rctx, c.Client(leader))
		if err != nil {
			t.Fatalf("request %d to the leader: %v", n, err)
		}
		again, err := call(rctx, c.Client(f))
		if err != nil {
			t.Fatalf("request %d again, through a follower: %v", n, err)
		}
		if !proto.Equal(first, again) {
			t.Errorf("request %d answered differently:\nfirst %v\nagain %v", n, first, again)
		}
		return first, again
	}
	idle := spec("web")
	idle.Replicas = 0
	send(func(ctx context.Context, cl shoalpb.ControlClient) (proto.Message, error) {
		return cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: idle})
	})
	upd := spec("web")
	upd.Replicas, upd.Image = 0, "busybox:1.36"
	send(func(ctx context.Context, cl shoalpb.ControlClient) (proto.Message, error) {
		return cl.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: "web", Spec: upd})
	})
	if got := fingerprint(t, c); !strings.Contains(got, " web v2 r0;") || strings.Count(got, "service ") != 1 {
		t.Fatalf("after a create and an update, each sent twice: %s; want web alone at v2", got)
	}
	_, again := send(func(ctx context.Context, cl shoalpb.ControlClient) (proto.Message, error) {
		return cl.RemoveService(ctx, &shoalpb.RemoveServiceRequest{Service: "web"})
	})
	if again.(*shoalpb.RemoveServiceResponse).GetIndex() == 0 {
		t.Error("a repeated remove answered without the index of the removal")
	}
	if got := fingerprint(t, c); strings.Contains(got, "service ") {
		t.Fatalf("after a remove: %s", got)
	}

	before, state := lastIndex(t, c), fingerprint(t, c)
	long := metadata.AppendToOutgoingContext(ctx, shoalpb.RequestIDKey, strings.Repeat("r", raftstore.MaxRequestIDLength+1))
	_, err := c.Client(f).CreateService(long, &shoalpb.CreateServiceRequest{Spec: idle})
	wantCode(t, err, codes.InvalidArgument, shoalpb.RequestIDKey, "129 bytes, longer than 128")
	if lastIndex(t, c) != before || fingerprint(t, c) != state {
		t.Error("a request with a bad request ID changed the state")
	}
}
