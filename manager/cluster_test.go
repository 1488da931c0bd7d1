package manager_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/membership"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// waitTimeout bounds every wait for the cluster to converge.
const waitTimeout = 20 * time.Second

func spec(name string) *shoalpb.ServiceSpec {
	return &shoalpb.ServiceSpec{Name: name, Image: "busybox:latest", Mode: "replicated", Replicas: 2}
}

func follower(t *testing.T, c *managertest.Cluster) int {
	t.Helper()
	l := c.WaitLeader(waitTimeout)
	for i := range c.N() {
		if i != l && c.Running(i) {
			return i
		}
	}
	t.Fatal("no running follower")
	return -1
}

func create(t *testing.T, cl shoalpb.ControlClient, name string) *shoalpb.ServiceWriteResponse {
	t.Helper()
	resp, err := cl.CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: spec(name)})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if resp.GetService().GetId() == "" || resp.GetIndex() == 0 {
		t.Fatalf("create %s: answer without id or index: %v", name, resp)
	}
	return resp
}

// hasServices reports whether manager i's local state (a stale read) holds
// exactly the named services.
func hasServices(t *testing.T, c *managertest.Cluster, i int, names ...string) error {
	resp, err := c.Client(i).ListServices(t.Context(), &shoalpb.ListServicesRequest{Stale: true})
	if err != nil {
		return err
	}
	var got []string
	for _, s := range resp.GetServices() {
		got = append(got, s.GetService().GetSpec().GetName())
	}
	slices.Sort(got)
	want := slices.Clone(names)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("manager %d has services %v, want %v", i, got, want)
	}
	return nil
}

func TestLeaderCrashKeepsCommittedWrites(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	f := follower(t, c)
	created := create(t, c.Client(f), "web")

	old := c.WaitLeader(waitTimeout)
	c.Kill(old)
	var next int
	c.WaitFor(waitTimeout, func() error {
		next = c.Leader()
		if next < 0 || next == old {
			return errors.New("no new leader yet")
		}
		return nil
	})

	survivor := (old + 1) % 3
	got, err := c.Client(survivor).GetService(t.Context(), &shoalpb.GetServiceRequest{Service: "web"})
	if err != nil {
		t.Fatalf("get web after failover: %v", err)
	}
	if got.GetId() != created.GetService().GetId() {
		t.Fatalf("web has id %s after failover, want %s", got.GetId(), created.GetService().GetId())
	}
	create(t, c.Client(survivor), "api")

	c.Restart(old)
	c.WaitFor(waitTimeout, func() error { return hasServices(t, c, old, "web", "api") })
	// The restarted manager serves fresh reads through the leader too.
	if _, err := c.Client(old).GetService(t.Context(), &shoalpb.GetServiceRequest{Service: "api"}); err != nil {
		t.Fatalf("fresh read on the restarted manager: %v", err)
	}
}

func TestFullClusterRestartKeepsState(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	create(t, c.Client(0), "web")
	create(t, c.Client(1), "db")
	if _, err := c.Client(2).ScaleService(t.Context(), &shoalpb.ScaleServiceRequest{Service: "web", Replicas: 5}); err != nil {
		t.Fatalf("scale: %v", err)
	}
	before, err := c.Client(0).ListServices(t.Context(), &shoalpb.ListServicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	c.Kill(0)
	c.Stop(1)
	c.Kill(2)
	for i := range 3 {
		c.Restart(i)
	}
	c.WaitLeader(waitTimeout)
	after, err := c.Client(1).ListServices(t.Context(), &shoalpb.ListServicesRequest{})
	if err != nil {
		t.Fatalf("list after restart: %v", err)
	}
	if len(after.GetServices()) != len(before.GetServices()) {
		t.Fatalf("%d services after restart, want %d", len(after.GetServices()), len(before.GetServices()))
	}
	for i, s := range after.GetServices() {
		b := before.GetServices()[i].GetService()
		if s.GetService().GetId() != b.GetId() || s.GetService().GetSpecVersion() != b.GetSpecVersion() ||
			s.GetService().GetSpec().GetReplicas() != b.GetSpec().GetReplicas() {
			t.Errorf("service %d after restart = %v, want %v", i, s.GetService(), b)
		}
	}
	create(t, c.Client(2), "cache")
}

func TestNoQuorum(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	create(t, c.Client(0), "web")
	c.WaitFor(waitTimeout, func() error { return hasServices(t, c, 2, "web") })
	c.Kill(0)
	c.Kill(1)

	// The client deadline is far above the server's bound: a hang would
	// show as DeadlineExceeded instead of the no-quorum error.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl := c.Client(2)
	writes := map[string]func() error{
		"create": func() error {
			_, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: spec("api")})
			return err
		},
		"scale": func() error {
			_, err := cl.ScaleService(ctx, &shoalpb.ScaleServiceRequest{Service: "web", Replicas: 3})
			return err
		},
		"fresh read": func() error {
			_, err := cl.GetService(ctx, &shoalpb.GetServiceRequest{Service: "web"})
			return err
		},
	}
	// The calls wait out the same leaderless time together.
	errs := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, call := range writes {
		wg.Go(func() {
			err := call()
			mu.Lock()
			errs[name] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	for name, err := range errs {
		t.Run(name, func(t *testing.T) { checkNoQuorum(t, err) })
	}
	got, err := cl.GetService(ctx, &shoalpb.GetServiceRequest{Service: "web", Stale: true})
	if err != nil || got.GetSpec().GetName() != "web" {
		t.Fatalf("stale read without quorum: %v, %v", got, err)
	}
	st, err := cl.ClusterStatus(ctx, &shoalpb.ClusterStatusRequest{})
	if err != nil {
		t.Fatalf("cluster status without quorum: %v", err)
	}
	reachable := 0
	for _, m := range st.GetManagers() {
		if m.GetReachable() {
			reachable++
		}
	}
	if st.GetAnsweredBy() != c.Manager(2).ID() || len(st.GetManagers()) != 3 || reachable != 1 {
		t.Fatalf("cluster status = %v; want answered by %s, 3 managers, 1 reachable", st, c.Manager(2).ID())
	}
}

func checkNoQuorum(t *testing.T, err error) {
	t.Helper()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("err = %v, want Unavailable", err)
	}
	want := "no leader: the cluster has no quorum (1 of 3 managers reachable)"
	if !strings.Contains(status.Convert(err).Message(), want) {
		t.Fatalf("message %q does not say %q", status.Convert(err).Message(), want)
	}
}

func TestForceNewClusterKeepsState(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	created := create(t, c.Client(1), "web")
	c.WaitFor(waitTimeout, func() error { return hasServices(t, c, 2, "web") })
	for i := range 3 {
		c.Kill(i)
	}
	c.RestartForceNewCluster(2)
	if l := c.WaitLeader(waitTimeout); l != 2 {
		t.Fatalf("leader is manager %d, want the recovered manager 2", l)
	}
	got, err := c.Client(2).GetService(t.Context(), &shoalpb.GetServiceRequest{Service: "web"})
	if err != nil || got.GetId() != created.GetService().GetId() {
		t.Fatalf("web after recovery: %v, %v", got, err)
	}
	create(t, c.Client(2), "api")
	// The leader forgets the managers that are no longer members.
	c.WaitFor(waitTimeout, func() error {
		st, err := c.Client(2).ClusterStatus(t.Context(), &shoalpb.ClusterStatusRequest{})
		if err != nil {
			return err
		}
		recorded := c.Manager(2).Raft().State().Read().Managers()
		if len(st.GetManagers()) != 1 || len(recorded) != 1 || recorded[0].ID != c.Manager(2).ID() {
			return fmt.Errorf("%d raft members and %d recorded managers, want this one alone", len(st.GetManagers()), len(recorded))
		}
		return nil
	})
}

func TestJoinThroughFollower(t *testing.T) {
	c := managertest.StartCluster(t, 2, managertest.Options{})
	create(t, c.SocketClient(0), "web")
	added := c.AddManager(follower(t, c))
	c.WaitFor(waitTimeout, func() error { return hasServices(t, c, added, "web") })
	st, err := c.SocketClient(added).ClusterStatus(t.Context(), &shoalpb.ClusterStatusRequest{})
	if err != nil || len(st.GetManagers()) != 3 {
		t.Fatalf("status after the join: %v, %v", st, err)
	}
	for _, m := range st.GetManagers() {
		if m.GetId() == c.Manager(added).ID() && (m.GetAddr() != c.Addr(added) || m.GetGossipAddr() != c.GossipAddr(added) || !m.GetVoter()) {
			t.Fatalf("the new manager is listed as %v", m)
		}
	}
	// With three voters, losing the first leader keeps a quorum.
	c.Kill(c.WaitLeader(waitTimeout))
	create(t, c.Client(follower(t, c)), "api")
}

func TestManagersGossipTogether(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	// An outside member (as an agent would be) joins through one manager,
	// with the cluster's gossip keys, and must come to see all three, with
	// their control addresses. Without the keys it is refused.
	cfg := membership.Config{
		NodeName: "observer", BindAddr: "127.0.0.1:0", Join: []string{c.GossipAddr(0)},
		Meta: membership.Meta{NodeID: "observer", Hostname: "observer", Role: api.RoleWorker},
	}
	var m *membership.Member
	c.WaitFor(waitTimeout, func() error {
		ring, ok := c.Manager(0).Raft().State().Read().GossipKeyring()
		if !ok {
			return errors.New("no gossip keys in the state yet")
		}
		if len(c.Manager(0).GossipView().Alive) == 0 {
			return errors.New("manager 0 does not gossip yet")
		}
		if plain, err := membership.Start(t.Context(), cfg); !errors.Is(err, membership.ErrJoin) {
			if plain != nil {
				plain.Close()
			}
			t.Fatalf("an unencrypted member joining the managers' gossip: %v, want ErrJoin", err)
		}
		cfg.Keys = ring.Raw()
		var err error
		m, err = membership.Start(t.Context(), cfg)
		return err
	})
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close the observer: %v", err)
		}
	})
	want := map[string]string{}
	for i := range 3 {
		want[c.Manager(i).ID()] = c.Addr(i)
	}
	c.WaitFor(waitTimeout, func() error {
		got := map[string]string{}
		for _, meta := range m.Members() {
			if meta.Role == api.RoleManager {
				got[meta.NodeID] = meta.GRPCAddr
			}
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("managers in gossip: %v, want %v", got, want)
		}
		return nil
	})
}

func TestRestartOnNewAddressIsRecorded(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	f := follower(t, c)
	old := c.Addr(f)
	c.Stop(f)
	c.RestartOnNewAddr(f)
	if c.Addr(f) == old {
		t.Fatalf("manager %d came back on its old address %s", f, old)
	}
	c.WaitFor(waitTimeout, func() error {
		st, err := c.Client(f).ClusterStatus(t.Context(), &shoalpb.ClusterStatusRequest{})
		if err != nil {
			return err
		}
		for _, m := range st.GetManagers() {
			if m.GetId() == c.Manager(f).ID() && m.GetAddr() == c.Addr(f) && m.GetReachable() {
				return nil
			}
		}
		return fmt.Errorf("the leader does not list manager %d at %s yet: %v", f, c.Addr(f), st.GetManagers())
	})
	create(t, c.Client(f), "web")
}
