package managertest

import (
	"crypto/rand"
	"encoding/hex"

	"google.golang.org/grpc"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/pkitest"
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
