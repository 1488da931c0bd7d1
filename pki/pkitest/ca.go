// Package pkitest is an in-memory certificate authority for tests across
// the repository: it issues credentials for any identity, including ones a
// real cluster would refuse (expired, another cluster), so tests can check
// that the refusal happens.
package pkitest

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/pki"
)

// CA is a test cluster's root.
type CA struct {
	Root      *pki.RootCA
	ClusterID string
	tb        testing.TB
}

// NewTestCA makes a root CA for a new random cluster ID.
func NewTestCA(tb testing.TB) *CA {
	tb.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("pkitest: %v", err)
	}
	id := "test-cluster-" + hex.EncodeToString(b[:])
	root, err := pki.NewRootCA(id, time.Now())
	if err != nil {
		tb.Fatalf("pkitest: root CA: %v", err)
	}
	return &CA{Root: root, ClusterID: id, tb: tb}
}

// Credentials issues a certificate valid for a day for nodeID with role
// in this cluster.
func (ca *CA) Credentials(nodeID, role string) *pki.Credentials {
	ca.tb.Helper()
	return ca.CredentialsFor(pki.Identity{NodeID: nodeID, Role: role, ClusterID: ca.ClusterID}, time.Now(), 24*time.Hour)
}

// CredentialsFor issues a certificate for any identity, valid from
// now-pki.Backdate to now+life: a past now makes an expired certificate,
// a future one a certificate not yet valid.
func (ca *CA) CredentialsFor(id pki.Identity, now time.Time, life time.Duration) *pki.Credentials {
	ca.tb.Helper()
	keyPEM, csr, err := pki.NewKeyAndCSR()
	if err != nil {
		ca.tb.Fatalf("pkitest: %v", err)
	}
	certPEM, err := ca.Root.Issue(csr, id, now, life)
	if err != nil {
		ca.tb.Fatalf("pkitest: issue %v: %v", id, err)
	}
	c, err := pki.NewCredentials(certPEM, keyPEM, ca.Root.CertPEM())
	if err != nil {
		ca.tb.Fatalf("pkitest: credentials %v: %v", id, err)
	}
	return c
}

// WriteDir issues credentials for nodeID with role and writes them to dir
// (ca.pem, cert.pem, key.pem), as a node's data dir or an operator's
// --tls-dir holds them.
func (ca *CA) WriteDir(dir, nodeID, role string) *pki.Credentials {
	ca.tb.Helper()
	c := ca.Credentials(nodeID, role)
	if err := c.SaveTo(dir); err != nil {
		ca.tb.Fatalf("pkitest: %v", err)
	}
	return c
}
