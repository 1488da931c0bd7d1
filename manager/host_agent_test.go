package manager_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// waitNodeReady waits until node id is ready as manager i sees it.
func waitNodeReady(t *testing.T, c *managertest.Cluster, cl shoalpb.ControlClient, id string) {
	t.Helper()
	c.WaitFor(20*time.Second, func() error {
		resp, err := cl.ListNodes(t.Context(), &shoalpb.ListNodesRequest{})
		if err != nil {
			return err
		}
		for _, n := range resp.GetNodes() {
			if n.GetNode().GetId() == id {
				if s := n.GetNode().GetStatus(); s != "ready" {
					return fmt.Errorf("node %s is %s", id, s)
				}
				return nil
			}
		}
		return fmt.Errorf("no node %s yet", id)
	})
}

// TestHostAgentFollowsManagerRenewal: the agent on a manager's host is
// one node with the manager's ID, on the manager's own certificate. A root
// rotation renews that certificate once, by the manager; the agent does
// not renew it nor write the manager's files, but reloads them, and after
// the rotation (the old root no longer trusted) its new sessions still
// pass TLS.
func TestHostAgentFollowsManagerRenewal(t *testing.T) {
	const interval = 100 * time.Millisecond
	c := managertest.StartCluster(t, 1, managertest.Options{NoGossip: true, Edit: func(cfg *manager.Config) {
		cfg.CertStatusInterval = interval
	}})
	creds := c.HostCredentials(0)
	nodeID := c.Manager(0).ID()
	if got := creds.Identity().NodeID; got != nodeID {
		t.Fatalf("the host's credentials name node %s, the manager is %s", got, nodeID)
	}
	a, err := agent.New(agent.Config{
		DataDir: t.TempDir(), Join: []string{c.Addr(0)}, AdvertiseAddr: "127.0.0.1:0", Hostname: "host0",
		Runtime: fake.New(), Resources: api.Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30},
		HeartbeatInterval: 200 * time.Millisecond,
		Credentials:       creds, SharedCredentialsDir: c.DataDir(0), CertStatusInterval: interval,
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.NodeID() != nodeID {
		t.Fatalf("agent node id %s, want the manager's %s", a.NodeID(), nodeID)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	waitNodeReady(t, c, c.Client(0), nodeID)

	before := creds.CertPEM()
	if _, err := c.Client(0).RotateRootCA(t.Context(), &shoalpb.RotateRootCARequest{}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(30*time.Second, func() error {
		st, err := c.Client(0).GetRootCAStatus(t.Context(), &shoalpb.GetRootCAStatusRequest{})
		switch {
		case err != nil:
			return err
		case st.GetRotating():
			return fmt.Errorf("rotation: %d of %d renewed, pending %v", st.GetRenewed(), st.GetTotal(), st.GetPending())
		}
		return nil
	})
	mine := c.Manager(0).Credentials()
	c.WaitFor(10*time.Second, func() error {
		if !bytes.Equal(creds.CertPEM(), mine.CertPEM()) || !bytes.Equal(creds.RootsPEM(), mine.RootsPEM()) {
			return fmt.Errorf("the agent has not reloaded the manager's renewed certificate yet")
		}
		return nil
	})
	if bytes.Equal(creds.CertPEM(), before) {
		t.Fatal("the certificate did not change in the rotation")
	}
	onDisk, err := os.ReadFile(filepath.Join(c.DataDir(0), pki.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, mine.CertPEM()) {
		t.Fatal("the manager's cert.pem is not the manager's certificate")
	}

	// A restarted manager trusts the new root only: the agent's new
	// session passes TLS with the reloaded certificate.
	c.Kill(0)
	c.Restart(0)
	waitNodeReady(t, c, c.ClientWith(0, c.Credentials(pki.RoleOperator)), nodeID)
	c.WaitFor(20*time.Second, func() error {
		if n := c.Manager(0).SessionCount(); n != 1 {
			return fmt.Errorf("%d sessions at the restarted manager, want 1", n)
		}
		return nil
	})
}
