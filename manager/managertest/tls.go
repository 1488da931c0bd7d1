package managertest

import (
	"errors"
	"time"

	"google.golang.org/grpc"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/manager/ca"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// certLife is the life of the certificates the harness issues.
const certLife = 24 * time.Hour

// Issue signs a certificate for nodeID with role with the cluster's own
// CA, as the managers would for a node that joined (nil in plaintext).
// Tests use it for the agents, operators and intruders they need.
func (c *Cluster) Issue(nodeID, role string) *pki.Credentials {
	c.t.Helper()
	if c.opts.Plaintext {
		return nil
	}
	var rec api.ClusterCA
	c.WaitFor(c.opts.StartTimeout, func() error {
		for i := range c.members {
			if m := c.Manager(i); m != nil && m.Raft() != nil {
				if r, ok := m.Raft().State().Read().CA(); ok {
					rec = r
					return nil
				}
			}
		}
		return errors.New("no running manager holds the cluster's CA yet")
	})
	keyPEM, csr, err := pki.NewKeyAndCSR()
	if err != nil {
		c.t.Fatalf("issue %s %s: %v", role, nodeID, err)
	}
	now := time.Now()
	certPEM, err := ca.Issue(rec, api.ClusterSettings{}, csr, pki.Identity{NodeID: nodeID, Role: role}, certLife, now)
	if err != nil {
		c.t.Fatalf("issue %s %s: %v", role, nodeID, err)
	}
	creds, err := pki.NewCredentials(certPEM, keyPEM, ca.TrustedRoots(rec))
	if err != nil {
		c.t.Fatalf("issue %s %s: %v", role, nodeID, err)
	}
	return creds
}

// Credentials issues a certificate of this cluster for a new node ID with
// role (nil in plaintext).
func (c *Cluster) Credentials(role string) *pki.Credentials {
	c.t.Helper()
	return c.Issue(ca.NewNodeID(), role)
}

// operatorCredentials is the operator certificate of the harness's
// clients, issued once.
func (c *Cluster) operatorCredentials() *pki.Credentials {
	c.t.Helper()
	c.mu.Lock()
	op := c.operator
	c.mu.Unlock()
	if op != nil || c.opts.Plaintext {
		return op
	}
	op = c.Credentials(pki.RoleOperator)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.operator == nil {
		c.operator = op
	}
	return c.operator
}

// DialOptions are the options to dial a manager of the cluster with
// creds (nil creds: plaintext, for a plaintext cluster or to check that a
// TLS cluster refuses it).
func (c *Cluster) DialOptions(creds *pki.Credentials) []grpc.DialOption {
	if creds == nil {
		return authz.DialOptions(nil)
	}
	return authz.DialOptions(creds.ClientTLS())
}

// AgentCredentials returns the worker certificate of the agent whose data
// dir is dataDir: issued (for a new node ID) and kept in the data dir the
// first time, read back on a restart, as a joined agent keeps its own.
// Nil in plaintext.
func (c *Cluster) AgentCredentials(dataDir string) *pki.Credentials {
	c.t.Helper()
	if c.opts.Plaintext {
		return nil
	}
	if creds, err := pki.LoadCredentials(dataDir); err == nil {
		return creds
	}
	creds := c.Credentials(pki.RoleWorker)
	if err := creds.SaveTo(dataDir); err != nil {
		c.t.Fatalf("agent credentials: %v", err)
	}
	return creds
}

// ClientWith returns a Control client for manager i over a connection of
// its own, dialled with creds (nil: plaintext).
func (c *Cluster) ClientWith(i int, creds *pki.Credentials) shoalpb.ControlClient {
	c.t.Helper()
	conn, err := grpc.NewClient(c.Addr(i), c.DialOptions(creds)...)
	if err != nil {
		c.t.Fatalf("dial %s: %v", c.Addr(i), err)
	}
	c.t.Cleanup(func() { conn.Close() })
	return shoalpb.NewControlClient(conn)
}
