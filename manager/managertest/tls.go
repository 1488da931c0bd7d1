package managertest

import (
	"crypto/rand"
	"encoding/hex"

	"google.golang.org/grpc"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/pkitest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// CA is the test CA that issued the managers' certificates (nil when the
// cluster runs in plaintext). Tests issue agents', operators' and
// intruders' certificates from it.
func (c *Cluster) CA() *pkitest.CA { return c.ca }

// Credentials issues a certificate of this cluster for a new random node
// ID with role (nil in plaintext).
func (c *Cluster) Credentials(role string) *pki.Credentials {
	if c.ca == nil {
		return nil
	}
	return c.ca.Credentials(role+"-"+randomName(), role)
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

// randomName is a random node ID for a test certificate.
func randomName() string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// AgentCredentials returns the worker certificate of the agent whose data
// dir is dataDir: issued (for a new node ID) and kept in the data dir the
// first time, read back on a restart, as a joined agent keeps its own.
// Nil in plaintext.
func (c *Cluster) AgentCredentials(dataDir string) *pki.Credentials {
	c.t.Helper()
	if c.ca == nil {
		return nil
	}
	if creds, err := pki.LoadCredentials(dataDir); err == nil {
		return creds
	}
	return c.ca.WriteDir(dataDir, randomName()+randomName()[:12], pki.RoleWorker)
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
