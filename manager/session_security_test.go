package manager_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// openSession opens a dispatcher session with hello naming nodeID and
// returns the stream and the first answer other than a heartbeat (or the
// error that ended it).
func openSession(t *testing.T, addr string, opts []grpc.DialOption, nodeID string) (shoalpb.Dispatcher_SessionClient, *shoalpb.ManagerMessage, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	stream, err := shoalpb.NewDispatcherClient(dial(t, addr, opts)).Session(ctx)
	if err != nil {
		return nil, nil, err
	}
	err = stream.Send(&shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Hello{Hello: &shoalpb.Hello{
		Node: &shoalpb.Node{Id: nodeID, Hostname: "host-" + nodeID[:6], Resources: &shoalpb.Resources{NanoCpus: 1e9, MemoryBytes: 1 << 30}},
	}}})
	if err != nil {
		// The refusal comes with the next receive.
		_, err = stream.Recv()
		return stream, nil, err
	}
	// Heartbeat answers (the first opens every session, before the hello
	// is checked) carry nothing of a node.
	m, err := stream.Recv()
	for err == nil && m.GetHeartbeat() != nil {
		m, err = stream.Recv()
	}
	return stream, m, err
}

// TestDispatcherRefusesAllButNodes opens sessions at the leader's
// dispatcher as every kind of caller: only a node certificate of this
// cluster gets one.
func TestDispatcherRefusesAllButNodes(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	op := c.Credentials(pki.RoleOperator)
	worker := c.Credentials(pki.RoleWorker)
	id := worker.Identity().NodeID
	for _, cl := range []caller{
		{"plaintext", c.DialOptions(nil), codes.Unavailable, ""},
		{"no certificate", authz.DialOptions(noCertTLS(op)), codes.Unauthenticated, "no client certificate"},
		{"another CA", authz.DialOptions(foreignTLS(t, pki.RoleWorker)), codes.Unavailable, ""},
		{"operator", c.DialOptions(op), codes.PermissionDenied, "as role operator"},
		{"worker", c.DialOptions(worker), codes.OK, ""},
	} {
		t.Run(cl.name, func(t *testing.T) {
			_, m, err := openSession(t, c.Addr(0), cl.opts, id)
			checkCode(t, err, cl.code, cl.text)
			if cl.code == codes.OK && m.GetAssignments() == nil {
				t.Fatalf("first message %v, want the assignment set", m)
			}
		})
	}
}

// startAgent runs a real agent (fake runtime) with its own certificate.
func startAgent(t *testing.T, c *managertest.Cluster, name string) *agent.Agent {
	t.Helper()
	rt := fake.New()
	rt.ScriptImage("img", fake.Script{})
	dir := t.TempDir()
	a, err := agent.New(agent.Config{
		DataDir: dir, Join: []string{c.Addr(0)}, AdvertiseAddr: "127.0.0.1:0", Hostname: name,
		Runtime: rt, Resources: api.Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30},
		Credentials: c.AgentCredentials(dir),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent %s: %v", name, err)
		}
	})
	return a
}

// TestSessionForAnotherNodeGetsNothing: an agent that names another node
// in its hello is refused, and none of that node's tasks reach it.
func TestSessionForAnotherNodeGetsNothing(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	victim := startAgent(t, c, "victim")
	ctl := c.Client(0)
	if _, err := ctl.CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
		Name: "web", Image: "img", Mode: "replicated", Replicas: 2,
	}}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(20*time.Second, func() error {
		resp, err := ctl.ListTasks(t.Context(), &shoalpb.ListTasksRequest{Service: "web"})
		if err != nil {
			return err
		}
		running := 0
		for _, task := range resp.GetTasks() {
			if task.GetNodeId() == victim.NodeID() && task.GetStatus().GetState() == "running" {
				running++
			}
		}
		if running != 2 {
			return fmt.Errorf("%d of 2 tasks run on the victim", running)
		}
		return nil
	})
	thief := c.DialOptions(c.Credentials(pki.RoleWorker))
	stream, m, err := openSession(t, c.Addr(0), thief, victim.NodeID())
	checkCode(t, err, codes.PermissionDenied, "certificate is node")
	if m != nil {
		t.Fatalf("the impersonator got %v", m)
	}
	if _, err := stream.Recv(); err == nil {
		t.Fatal("the refused stream goes on")
	}
}

// TestNodeRemoveRevokes: once a node is removed, its open session ends
// within a second with the revocation, and a reconnect or any other call
// with its certificate is refused.
func TestNodeRemoveRevokes(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	creds := c.Credentials(pki.RoleWorker)
	id := creds.Identity().NodeID
	stream, m, err := openSession(t, c.Addr(0), c.DialOptions(creds), id)
	if err != nil || m.GetAssignments() == nil {
		t.Fatalf("session: first message %v, %v; want the assignment set", m, err)
	}
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()
	if _, err := c.Client(0).RemoveNode(t.Context(), &shoalpb.RemoveNodeRequest{Node: id, Force: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		checkCode(t, err, codes.PermissionDenied, "revoked")
	case <-time.After(time.Second):
		t.Fatal("the removed node's session is still open a second after node rm")
	}
	_, _, err = openSession(t, c.Addr(0), c.DialOptions(creds), id)
	checkCode(t, err, codes.PermissionDenied, "removed from the cluster")
	_, err = c.ClientWith(0, creds).ClusterStatus(t.Context(), &shoalpb.ClusterStatusRequest{Stale: true})
	checkCode(t, err, codes.PermissionDenied, "removed from the cluster")
	if errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
