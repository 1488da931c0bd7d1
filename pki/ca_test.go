package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/pki"
)

// TestIssueIgnoresCSRSubject: a CSR that asks for another node's ID, the
// manager role and another cluster still gets what the CA chose.
func TestIssueIgnoresCSRSubject(t *testing.T) {
	now := time.Now()
	root, err := pki.NewRootCA("cluster-a", now)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "the-leader", OrganizationalUnit: []string{pki.RoleManager}, Organization: []string{"cluster-b"}},
		DNSNames: []string{"manager"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	chosen := pki.Identity{NodeID: "n-chosen", Role: pki.RoleWorker, ClusterID: "cluster-a"}
	certPEM, err := root.Issue(csr, chosen, now, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCertsPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pki.IdentityFromCert(certs[0])
	if err != nil || got != chosen {
		t.Fatalf("identity %v (%v), want %v", got, err, chosen)
	}
	c := certs[0]
	if !c.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Error("the certificate is not over the CSR's key")
	}
	if want := now.Add(-pki.Backdate); c.NotBefore.After(want.Add(time.Second)) || c.NotBefore.Before(want.Add(-time.Second)) {
		t.Errorf("NotBefore %s, want %s (backdated)", c.NotBefore, want)
	}
	for _, n := range c.DNSNames {
		if n == pki.RoleManager {
			t.Errorf("a worker certificate names %q", n)
		}
	}
	if got := c.NotAfter.Sub(now); got < 2*time.Hour-time.Second || got > 2*time.Hour+time.Second {
		t.Errorf("life %s, want 2h", got)
	}
	if root.Cert.NotAfter.Sub(now) < pki.RootValidity-time.Minute {
		t.Errorf("root valid until %s, want %s from now", root.Cert.NotAfter, pki.RootValidity)
	}
}

func TestIssueRefusesBadCSR(t *testing.T) {
	root, _ := pki.NewRootCA("c", time.Now())
	_, csr, _ := pki.NewKeyAndCSR()
	tampered := append([]byte(nil), csr...)
	tampered[len(tampered)-5] ^= 0xff
	id := pki.Identity{NodeID: "n", Role: pki.RoleWorker, ClusterID: "c"}
	for name, in := range map[string][]byte{"garbage": []byte("nope"), "bad signature": tampered} {
		if _, err := root.Issue(in, id, time.Now(), time.Hour); !errors.Is(err, pki.ErrBadCertificate) {
			t.Errorf("%s: err %v, want ErrBadCertificate", name, err)
		}
	}
	if _, err := root.Issue(csr, pki.Identity{NodeID: "n", Role: "root", ClusterID: "c"}, time.Now(), time.Hour); err == nil {
		t.Error("issued a certificate with an unknown role")
	}
	verifyOnly, _ := pki.ParseRootCA(root.CertPEM(), nil)
	if _, err := verifyOnly.Issue(csr, id, time.Now(), time.Hour); err == nil {
		t.Error("a root without a key signed")
	}
}

func TestTokens(t *testing.T) {
	root, _ := pki.NewRootCA("c", time.Now())
	tok, err := pki.NewToken(root.Digest())
	if err != nil {
		t.Fatal(err)
	}
	s := tok.String()
	if !strings.HasPrefix(s, "SHLTKN-1-"+root.Digest()+"-") {
		t.Fatalf("token %q", s)
	}
	back, err := pki.ParseToken(" " + s + "\n")
	if err != nil || back != tok {
		t.Fatalf("parse %q: %v, %v", s, back, err)
	}
	other, _ := pki.NewToken(root.Digest())
	if other.Secret == tok.Secret {
		t.Fatal("two tokens share a secret")
	}
	if !pki.SecretEqual(tok.Secret, back.Secret) || pki.SecretEqual(tok.Secret, other.Secret) {
		t.Fatal("SecretEqual")
	}
	for _, bad := range []string{"", "SHLTKN-1-abc", "SWMTKN-1-" + root.Digest() + "-" + tok.Secret,
		"SHLTKN-2-" + root.Digest() + "-" + tok.Secret, "SHLTKN-1-" + root.Digest() + "-short",
		"SHLTKN-1-" + strings.ToUpper(root.Digest()) + "-" + tok.Secret} {
		if _, err := pki.ParseToken(bad); !errors.Is(err, pki.ErrInvalidToken) {
			t.Errorf("ParseToken(%q) = %v, want ErrInvalidToken", bad, err)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	root, _ := pki.NewRootCA("c", time.Now())
	_, csr, _ := pki.NewKeyAndCSR()
	id := pki.Identity{NodeID: "n", Role: pki.RoleWorker, ClusterID: "c"}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := root.Issue(csr, id, now, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
}

// BenchmarkECDSASign is the baseline of BenchmarkIssue: one P-256
// signature, the floor of what signing a certificate costs.
func BenchmarkECDSASign(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ecdsa.SignASN1(rand.Reader, key, digest); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
}
