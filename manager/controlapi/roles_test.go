package controlapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// startHostAgent runs the agent of manager i's host: a real agent (fake
// runtime) that presents the manager's certificate, so its node id is the
// manager's id, joined to every manager.
func startHostAgent(t *testing.T, c *managertest.Cluster, i int) {
	t.Helper()
	var join []string
	for j := range c.N() {
		join = append(join, c.Addr(j))
	}
	a, err := agent.New(agent.Config{
		DataDir: t.TempDir(), NodeID: c.Manager(i).ID(), Join: join, AdvertiseAddr: "127.0.0.1:0",
		Credentials: c.HostCredentials(i), SharedCredentialsDir: c.DataDir(i),
		Hostname: fmt.Sprintf("host%d", i), Runtime: fake.New(),
		Resources:         api.Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30},
		HeartbeatInterval: 200 * time.Millisecond, StatusDelay: 10 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("agent of host %d: %v", i, err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("agent of host %d did not stop within 30s", i)
		}
	})
}

// nodeRoles lists the nodes by id: role and manager status.
func nodeRoles(ctx context.Context, cl shoalpb.ControlClient) (map[string][2]string, error) {
	resp, err := cl.ListNodes(ctx, &shoalpb.ListNodesRequest{})
	if err != nil {
		return nil, err
	}
	out := map[string][2]string{}
	for _, n := range resp.GetNodes() {
		if n.GetNode().GetStatus() == "ready" {
			out[n.GetNode().GetId()] = [2]string{n.GetNode().GetRole(), n.GetManagerStatus()}
		}
	}
	return out, nil
}

// waitRoles waits until every listed node is ready with that role and
// manager status ("" matches any status of a manager).
func waitRoles(t *testing.T, c *managertest.Cluster, want map[string][2]string) {
	t.Helper()
	c.WaitFor(waitTimeout, func() error {
		got, err := nodeRoles(t.Context(), c.Client(c.WaitLeader(waitTimeout)))
		if err != nil {
			return err
		}
		for id, w := range want {
			g, ok := got[id]
			if !ok || g[0] != w[0] || (w[1] != "" && g[1] != w[1]) {
				return fmt.Errorf("node %s is %v, want %v (all: %v)", id, g, w, got)
			}
		}
		return nil
	})
}

func waitVoters(t *testing.T, c *managertest.Cluster, n int) {
	t.Helper()
	c.WaitFor(waitTimeout, func() error {
		got, err := c.Voters()
		if err == nil && got != n {
			err = fmt.Errorf("%d voters, want %d", got, n)
		}
		return err
	})
}

// tasksOn returns the running tasks of service by node.
func tasksOn(t *testing.T, cl shoalpb.ControlClient, service string) map[string][]string {
	t.Helper()
	resp, err := cl.ListTasks(t.Context(), &shoalpb.ListTasksRequest{Service: service})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, tk := range resp.GetTasks() {
		if tk.GetStatus().GetState() == "running" && tk.GetDesiredState() == "running" {
			out[tk.GetNodeId()] = append(out[tk.GetNodeId()], tk.GetId())
		}
	}
	return out
}

// TestManagersAreNodes: three managers whose hosts run tasks are three
// manager nodes (leader, reachable, reachable) that node.role==manager
// constraints match and drain empties; a standby manager's host is a
// worker until promoted (4 voters, writes go on), and demoting the leader
// hands leadership over first (3 voters, no task lost). Demoting the last
// manager, or one whose loss breaks the quorum, is refused saying why.
func TestManagersAreNodes(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	sb := c.AddStandby(0)
	for i := range c.N() {
		startHostAgent(t, c, i)
	}
	id := func(i int) string { return c.Manager(i).ID() }
	leader := c.WaitLeader(waitTimeout)
	roles := map[string][2]string{id(sb): {"worker", ""}, id(leader): {"manager", "leader"}}
	for i := range 3 {
		if i != leader {
			roles[id(i)] = [2]string{"manager", "reachable"}
		}
	}
	waitRoles(t, c, roles)

	cl := c.Client(leader)
	ctx := t.Context()
	mon := spec("monitor")
	mon.Replicas = 3
	mon.Placement = &shoalpb.Placement{Constraints: []string{"node.role == manager"}}
	if _, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: mon}); err != nil {
		t.Fatal(err)
	}
	// A global service: a task on every node, the demoted one's included.
	web := spec("web")
	web.Mode, web.Replicas = "global", 0
	if _, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: web}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(waitTimeout, func() error {
		on := tasksOn(t, cl, "monitor")
		n := 0
		for node, ids := range on {
			if node == id(sb) {
				return fmt.Errorf("monitor runs on the standby's (worker) node %s", node)
			}
			n += len(ids)
		}
		if n != 3 {
			return fmt.Errorf("%d of 3 monitor tasks running: %v", n, on)
		}
		return nil
	})

	// Drain keeps tasks off a manager node as off any node.
	drained := id((leader + 1) % 3)
	if _, err := cl.UpdateNode(ctx, &shoalpb.UpdateNodeRequest{Node: drained, Availability: "drain"}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(waitTimeout, func() error {
		if ids := tasksOn(t, cl, "monitor")[drained]; len(ids) > 0 {
			return fmt.Errorf("drained manager node still runs %v", ids)
		}
		return nil
	})
	if _, err := cl.UpdateNode(ctx, &shoalpb.UpdateNodeRequest{Node: drained, Availability: "active"}); err != nil {
		t.Fatal(err)
	}

	// Promote the standby: 4 voters, its node a manager, writes go on.
	resp, err := c.Client(sb).PromoteNode(ctx, &shoalpb.PromoteNodeRequest{Node: "host3"})
	if err != nil {
		t.Fatalf("promote: %v", err)
	}
	if !resp.GetChanged() || resp.GetNode().GetRole() != "manager" {
		t.Fatalf("promote answered %v", resp)
	}
	waitVoters(t, c, 4)
	waitRoles(t, c, map[string][2]string{id(sb): {"manager", "reachable"}})
	if _, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: spec("after-promotion")}); err != nil {
		t.Fatalf("a write after the promotion: %v", err)
	}
	again, err := cl.PromoteNode(ctx, &shoalpb.PromoteNodeRequest{Node: id(sb)})
	if err != nil || again.GetChanged() {
		t.Fatalf("promote of a manager: %v, %v; want no change", again, err)
	}

	// Demote the leader: leadership is handed over first; its tasks stay.
	c.WaitFor(waitTimeout, func() error {
		if n := len(tasksOn(t, cl, "web")[id(leader)]); n != 1 {
			return fmt.Errorf("%d web tasks on the leader's node, want 1", n)
		}
		return nil
	})
	before := tasksOn(t, cl, "web")[id(leader)]
	if _, err := c.Client(sb).DemoteNode(ctx, &shoalpb.DemoteNodeRequest{Node: id(leader)}); err != nil {
		t.Fatalf("demote the leader: %v", err)
	}
	waitVoters(t, c, 3)
	if l := c.WaitLeader(waitTimeout); l == leader {
		t.Fatalf("manager %d still leads after its demotion", l)
	}
	waitRoles(t, c, map[string][2]string{id(leader): {"worker", ""}})
	cl = c.Client(c.WaitLeader(waitTimeout))
	after := tasksOn(t, cl, "web")[id(leader)]
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("tasks on the demoted node changed: %v, then %v", before, after)
	}

	// The demoted manager, restarted on a new address, asks to be recorded
	// again and stays a standby.
	c.Stop(leader)
	c.RestartOnNewAddr(leader)
	c.WaitFor(waitTimeout, func() error {
		l := c.WaitLeader(waitTimeout)
		rec, ok := c.Manager(l).Raft().State().Read().Manager(id(leader))
		if !ok || rec.Addr != c.AdvertiseAddr(leader) || !rec.NonVoter {
			return fmt.Errorf("record of the restarted standby: %+v, want addr %s, non-voter", rec, c.AdvertiseAddr(leader))
		}
		return nil
	})
	waitVoters(t, c, 3)

	// Kill one of the three voters: demoting another would leave one
	// reachable voter of two, below the quorum.
	var voters []int
	for _, i := range []int{0, 1, 2, sb} {
		if i != leader {
			voters = append(voters, i)
		}
	}
	victim, target := voters[0], voters[1]
	if c.Leader() == victim {
		victim, target = voters[1], voters[0]
	}
	if c.Leader() == target {
		target = voters[2]
	}
	victimID, targetID := id(victim), id(target)
	c.Kill(victim)
	live := c.Client(c.WaitLeader(waitTimeout))
	_, err = live.DemoteNode(ctx, &shoalpb.DemoteNodeRequest{Node: targetID})
	wantCode(t, err, codes.FailedPrecondition, targetID, "break the quorum", "1 of the 2 other managers are reachable", victimID)
	waitVoters(t, c, 3)
}

// TestDemoteLastManager: the only manager cannot be demoted.
func TestDemoteLastManager(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	startHostAgent(t, c, 0)
	waitRoles(t, c, map[string][2]string{c.Manager(0).ID(): {"manager", "leader"}})
	_, err := c.Client(0).DemoteNode(t.Context(), &shoalpb.DemoteNodeRequest{Node: "host0"})
	wantCode(t, err, codes.FailedPrecondition, "last manager", "promote another node first")
	_, err = c.Client(0).PromoteNode(t.Context(), &shoalpb.PromoteNodeRequest{Node: "nosuchnode"})
	wantCode(t, err, codes.NotFound, "nosuchnode")
}
