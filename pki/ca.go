package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Lifetimes.
const (
	// RootValidity is how long a root CA certificate is valid.
	RootValidity = 20 * 365 * 24 * time.Hour
	// Backdate is how far before "now" a certificate starts, so that a node
	// whose clock is a little behind the CA's accepts it at once.
	Backdate = time.Hour
	// OperatorCertExpiry is an operator certificate's life: it is for a
	// person's laptop, so it is short.
	OperatorCertExpiry = 24 * time.Hour
)

// rootCN is the common name of every shoal root CA.
const rootCN = "shoal root CA"

// RootCA is a cluster's certificate authority: the root certificate, and
// the key that signs node certificates where this process holds it.
//
// During a root rotation the signer is the new root's key and chain holds
// the new root cross-signed by the old one, so a node that still trusts only
// the old root can verify a certificate the new key signed.
type RootCA struct {
	Cert    *x509.Certificate
	certPEM []byte
	signer  crypto.Signer // nil: this RootCA verifies only
	keyPEM  []byte
	chain   []byte // PEM appended to every issued leaf (a cross-signed root)
}

// NewRootCA makes a root CA for a cluster: a new P-256 key and a
// self-signed certificate valid RootValidity from now (backdated).
func NewRootCA(clusterID string, now time.Time) (*RootCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("root CA key: %w", err)
	}
	tmpl, err := rootTemplate(clusterID, now)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("root CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return ParseRootCA(pemBlock("CERTIFICATE", der), keyPEM)
}

func rootTemplate(clusterID string, now time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: rootCN, Organization: []string{clusterID}},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(RootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil
}

// ParseRootCA reads a root certificate and, when keyPEM is not empty, its
// key, checking that the two belong together.
func ParseRootCA(certPEM, keyPEM []byte) (*RootCA, error) {
	certs, err := ParseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("root CA: %w", err)
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("root CA: %w: %d certificates in the PEM, want 1", ErrBadCertificate, len(certs))
	}
	c := certs[0]
	if !c.IsCA {
		return nil, fmt.Errorf("root CA: %w: not a CA certificate", ErrBadCertificate)
	}
	ca := &RootCA{Cert: c, certPEM: pemBlock("CERTIFICATE", c.Raw)}
	if len(keyPEM) == 0 {
		return ca, nil
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("root CA key: %w", err)
	}
	if !publicKeysEqual(key.Public(), c.PublicKey) {
		return nil, fmt.Errorf("root CA: %w: the key does not match the certificate", ErrBadCertificate)
	}
	ca.signer, ca.keyPEM = key, append([]byte(nil), keyPEM...)
	return ca, nil
}

// WithSigner returns a copy of ca whose certificates are signed by signer,
// a CA key whose certificate chains to ca through chainPEM (the new root
// cross-signed by ca, during a rotation).
func (ca *RootCA) WithSigner(keyPEM, chainPEM []byte) (*RootCA, error) {
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	certs, err := ParseCertsPEM(chainPEM)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("signing chain: %w: %v", ErrBadCertificate, err)
	}
	if !publicKeysEqual(key.Public(), certs[0].PublicKey) {
		return nil, fmt.Errorf("signing chain: %w: the key does not match the certificate", ErrBadCertificate)
	}
	cp := *ca
	cp.signer, cp.keyPEM, cp.chain = key, append([]byte(nil), keyPEM...), append([]byte(nil), chainPEM...)
	return &cp, nil
}

// CertPEM is the root certificate in PEM.
func (ca *RootCA) CertPEM() []byte { return append([]byte(nil), ca.certPEM...) }

// KeyPEM is the signing key in PEM, nil when this RootCA cannot sign.
func (ca *RootCA) KeyPEM() []byte { return append([]byte(nil), ca.keyPEM...) }

// CanSign reports whether this RootCA holds a signing key.
func (ca *RootCA) CanSign() bool { return ca.signer != nil }

// ClusterID is the O of the root certificate.
func (ca *RootCA) ClusterID() string {
	if len(ca.Cert.Subject.Organization) == 0 {
		return ""
	}
	return ca.Cert.Subject.Organization[0]
}

// Digest is the root certificate's digest, as join tokens carry it.
func (ca *RootCA) Digest() string { return DigestOf(ca.Cert) }

// DigestOf is the SHA-256 of a certificate's DER, in base 36, 50 digits.
func DigestOf(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return fmt.Sprintf("%050s", new(big.Int).SetBytes(sum[:]).Text(36))
}

// Issue signs a certificate for id over the public key of csrDER (a
// PKCS #10 request in DER). Everything but the public key comes from the
// CA: the subject the CSR asks for is ignored. The certificate is valid
// from now-Backdate to now+life; the result is the leaf in PEM followed by
// any chain a node needs to reach the root.
func (ca *RootCA) Issue(csrDER []byte, id Identity, now time.Time, life time.Duration) ([]byte, error) {
	if ca.signer == nil {
		return nil, errors.New("root CA: this process holds no signing key")
	}
	if err := checkIdentity(id); err != nil {
		return nil, err
	}
	pub, err := csrPublicKey(csrDER)
	if err != nil {
		return nil, err
	}
	tmpl, err := leafTemplate(id, now, life)
	if err != nil {
		return nil, err
	}
	issuer, err := ca.issuerCert()
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, pub, ca.signer)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	return append(pemBlock("CERTIFICATE", der), ca.chain...), nil
}

// issuerCert is the certificate of the signing key: the root, or the first
// certificate of the chain during a rotation.
func (ca *RootCA) issuerCert() (*x509.Certificate, error) {
	if len(ca.chain) == 0 {
		return ca.Cert, nil
	}
	certs, err := ParseCertsPEM(ca.chain)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

func checkIdentity(id Identity) error {
	switch {
	case id.NodeID == "" || strings.ContainsAny(id.NodeID, "\x00\n"):
		return fmt.Errorf("%w: node id %q", ErrBadCertificate, id.NodeID)
	case !ValidRole(id.Role):
		return fmt.Errorf("%w: role %q is not one of manager, worker, operator", ErrBadCertificate, id.Role)
	case id.ClusterID == "":
		return fmt.Errorf("%w: empty cluster id", ErrBadCertificate)
	}
	return nil
}

func leafTemplate(id Identity, now time.Time, life time.Duration) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         id.NodeID,
			OrganizationalUnit: []string{id.Role},
			Organization:       []string{id.ClusterID},
		},
		// The role and the node ID as DNS names let a standard verifier
		// check "is this a manager" with ServerName = RoleManager.
		DNSNames:              []string{id.Role, id.NodeID},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(life),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}, nil
}

// csrPublicKey checks a CSR's signature (the node holds the key) and
// returns its public key, refusing key types shoal does not use.
func csrPublicKey(csrDER []byte) (crypto.PublicKey, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate request: %w", ErrBadCertificate, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: certificate request signature: %w", ErrBadCertificate, err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, fmt.Errorf("%w: certificate request: ECDSA curve %s, want P-256 or P-384", ErrBadCertificate, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("%w: certificate request: key type %T, want ECDSA P-256", ErrBadCertificate, csr.PublicKey)
	}
	return csr.PublicKey, nil
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// NewRootFor makes the next root of ca's cluster (a new key, same cluster
// ID) and the new root cross-signed by ca: a certificate over the new
// root's key and subject that ca issued, so that nodes which still trust
// only ca can verify what the new key signs. It returns the new root (with
// its key) and the cross-signed certificate in PEM.
func (ca *RootCA) NewRootFor(now time.Time) (*RootCA, []byte, error) {
	if ca.signer == nil {
		return nil, nil, errors.New("root rotation: the current root's key is not here")
	}
	next, err := NewRootCA(ca.ClusterID(), now)
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := rootTemplate(ca.ClusterID(), now)
	if err != nil {
		return nil, nil, err
	}
	tmpl.Subject = next.Cert.Subject
	tmpl.SubjectKeyId = next.Cert.SubjectKeyId
	tmpl.NotAfter = minTime(next.Cert.NotAfter, ca.Cert.NotAfter)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, next.Cert.PublicKey, ca.signer)
	if err != nil {
		return nil, nil, fmt.Errorf("cross-sign the new root: %w", err)
	}
	return next, pemBlock("CERTIFICATE", der), nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
