package pki_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/pkitest"
)

// TestSharedCredentials: credentials read from another node's dir pick up
// its renewals, survive a half-written renewal, and never write the dir.
func TestSharedCredentials(t *testing.T) {
	ca := pkitest.NewTestCA(t)
	dir := t.TempDir()
	owner := ca.WriteDir(dir, "node-1", pki.RoleManager)
	shared, err := pki.ReadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := shared.Reload(dir); changed || err != nil {
		t.Fatalf("reload of unchanged files: changed %v, err %v", changed, err)
	}

	// The owner renews: the reader takes the new certificate.
	next := ca.Credentials("node-1", pki.RoleManager)
	if err := owner.Update(next.CertPEM(), next.KeyPEM(), nil); err != nil {
		t.Fatal(err)
	}
	if changed, err := shared.Reload(dir); !changed || err != nil {
		t.Fatalf("reload after a renewal: changed %v, err %v", changed, err)
	}
	if !bytes.Equal(shared.CertPEM(), next.CertPEM()) {
		t.Fatal("the reader does not hold the renewed certificate")
	}

	// A renewal caught half written (new key, old certificate) is refused
	// and the current set stays.
	torn := ca.Credentials("node-1", pki.RoleManager)
	if err := os.WriteFile(filepath.Join(dir, pki.KeyFile), torn.KeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := shared.Reload(dir); changed || err == nil {
		t.Fatalf("reload of a torn write: changed %v, err %v; want an error", changed, err)
	}
	if !bytes.Equal(shared.CertPEM(), next.CertPEM()) {
		t.Fatal("a torn write replaced the reader's certificate")
	}

	// An update of the reader stays in memory: the owner's files are not
	// touched.
	before, err := os.ReadFile(filepath.Join(dir, pki.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	other := ca.Credentials("node-1", pki.RoleManager)
	if err := shared.Update(other.CertPEM(), other.KeyPEM(), nil); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(filepath.Join(dir, pki.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("an update of shared credentials wrote the owner's dir")
	}
}
