package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ServerTLS is the configuration of every listener: TLS 1.3, the current
// certificate, and client certificates verified against the current roots
// when given. A client without a certificate gets through the handshake
// (the join calls are open); the authorisation table refuses it everything
// else. Renewal and rotation apply from the next handshake.
func (c *Credentials) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			b := c.cur.Load()
			cfg := &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{b.cert},
				ClientAuth:   tls.VerifyClientCertIfGiven,
				ClientCAs:    b.roots,
				Time:         c.now,
				// The chain is verified by crypto/tls (which sends the
				// client an "expired" or "unknown CA" alert it can name);
				// this adds the cluster check.
				VerifyConnection: func(cs tls.ConnectionState) error {
					if len(cs.PeerCertificates) == 0 {
						return nil
					}
					_, err := c.checkCluster(cs.PeerCertificates[0], "")
					return err
				},
			}
			c.setTicketKeys(cfg)
			return cfg, nil
		},
	}
}

// ClientTLS is the configuration of every client link to a manager: the
// current certificate, and a server that must chain to the current roots
// and be a manager of this cluster. Hostnames are not checked (lab and
// real addresses are IPs); the identity in the certificate is.
func (c *Credentials) ClientTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    c.Roots(),
		ServerName: RoleManager,
		// Every manager names itself "manager", so the one cached session
		// is offered to whichever manager is dialled next (see
		// tickets.go).
		ClientSessionCache: tls.NewLRUClientSessionCache(4),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert := c.cur.Load().cert
			return &cert, nil
		},
		// Verification is done in VerifyConnection against the roots of
		// the moment, which a fixed RootCAs could not follow.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := c.VerifyPeer(cs.PeerCertificates, RoleManager)
			return err
		},
	}
}

// VerifyPeer checks a peer's chain (leaf first) against the current roots
// and, when role is not empty, that the leaf has that role; it returns the
// peer's identity. Errors name the case (ErrExpired, ErrNotYetValid,
// ErrWrongCA, ErrBadCertificate).
func (c *Credentials) VerifyPeer(chain []*x509.Certificate, role string) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, fmt.Errorf("%w: the peer sent no certificate", ErrBadCertificate)
	}
	raw := make([][]byte, len(chain))
	for i, p := range chain {
		raw[i] = p.Raw
	}
	if _, err := verifyChain(raw, c.Roots(), c.now(), x509.ExtKeyUsageAny); err != nil {
		return Identity{}, err
	}
	return c.checkCluster(chain[0], role)
}

// checkCluster checks that a verified leaf is of this cluster and, when
// role is set, of that role.
func (c *Credentials) checkCluster(leaf *x509.Certificate, role string) (Identity, error) {
	id, err := IdentityFromCert(leaf)
	if err != nil {
		return Identity{}, err
	}
	if mine := c.Identity().ClusterID; id.ClusterID != mine {
		return Identity{}, fmt.Errorf("%w: peer %s is in cluster %s, this node in %s", ErrWrongCA, id.NodeID, id.ClusterID, mine)
	}
	if role != "" && id.Role != role {
		return Identity{}, fmt.Errorf("%w: peer %s has role %s, want %s", ErrBadCertificate, id.NodeID, id.Role, role)
	}
	return id, nil
}

// verifyChain verifies a DER chain (leaf first) against roots at now,
// turning crypto/x509's errors into ones that name the case.
func verifyChain(raw [][]byte, roots *x509.CertPool, now time.Time, usage x509.ExtKeyUsage) ([][]*x509.Certificate, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: empty chain", ErrBadCertificate)
	}
	certs := make([]*x509.Certificate, len(raw))
	inter := x509.NewCertPool()
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadCertificate, err)
		}
		certs[i] = c
		if i > 0 {
			inter.AddCert(c)
		}
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		return nil, explainVerify(certs[0], now, err)
	}
	return chains, nil
}

// VerifyPEM verifies a PEM chain (leaf first) against rootsPEM at now and
// returns its leaf; errors name the case, as VerifyPeer's do.
func VerifyPEM(chainPEM, rootsPEM []byte, now time.Time) (*x509.Certificate, error) {
	certs, err := ParseCertsPEM(chainPEM)
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no certificate in the PEM", ErrBadCertificate)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootsPEM) {
		return nil, fmt.Errorf("%w: no root certificate in the roots' PEM", ErrBadCertificate)
	}
	raw := make([][]byte, len(certs))
	for i, c := range certs {
		raw[i] = c.Raw
	}
	if _, err := verifyChain(raw, roots, now, x509.ExtKeyUsageAny); err != nil {
		return nil, err
	}
	return certs[0], nil
}

// explainVerify names why a chain did not verify, with the dates a person
// needs to tell an expired certificate from a wrong clock.
func explainVerify(leaf *x509.Certificate, now time.Time, err error) error {
	var inv x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		// The certificate out of its validity may be the leaf or a CA
		// above it; name the one it is.
		c := inv.Cert
		if c == nil {
			c = leaf
		}
		if now.Before(c.NotBefore) {
			return fmt.Errorf("%w: certificate %q is valid from %s but this clock says %s: is the clock far off?",
				ErrNotYetValid, c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
		return fmt.Errorf("%w: certificate %q expired at %s (now %s)",
			ErrExpired, c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case errors.As(err, &unknown):
		return fmt.Errorf("%w: certificate %q is not signed by a root this node trusts", ErrWrongCA, leaf.Subject.CommonName)
	}
	return fmt.Errorf("%w: %w", ErrBadCertificate, err)
}

// CheckOwn verifies this node's own certificate against its roots at its
// clock: a node whose certificate has expired (or whose clock is far off)
// learns why before a manager refuses it with a bare handshake failure.
func (c *Credentials) CheckOwn() error {
	_, err := verifyChain(c.cur.Load().cert.Certificate, c.Roots(), c.now(), x509.ExtKeyUsageClientAuth)
	if errors.Is(err, ErrExpired) && c.Identity().Role != RoleOperator {
		return fmt.Errorf("%w; the node must join again with a token (remove %s, %s, %s from its data dir)", err, CertFile, KeyFile, RootsFile)
	}
	return err
}

// InsecureFetchTLS is the configuration a joining node uses for its first
// call, GetRootCA, before it has anything to check the server against: the
// server is not verified here, the caller checks the root it gets against
// the token's digest before it sends anything secret.
func InsecureFetchTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
}

// RootTLS is the configuration of a node that has checked root against its
// token but holds no certificate yet: the server must be a manager under
// root (directly, or through a chain it sends).
func RootTLS(root *x509.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(root)
	clusterID := ""
	if len(root.Subject.Organization) > 0 {
		clusterID = root.Subject.Organization[0]
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // verified below, without hostnames
		VerifyConnection: func(cs tls.ConnectionState) error {
			raw := make([][]byte, len(cs.PeerCertificates))
			for i, p := range cs.PeerCertificates {
				raw[i] = p.Raw
			}
			if _, err := verifyChain(raw, pool, time.Now(), x509.ExtKeyUsageServerAuth); err != nil {
				return err
			}
			id, err := IdentityFromCert(cs.PeerCertificates[0])
			if err != nil {
				return err
			}
			if id.Role != RoleManager || id.ClusterID != clusterID {
				return fmt.Errorf("%w: server is %s, want a manager of cluster %s", ErrBadCertificate, id, clusterID)
			}
			return nil
		},
	}
}

// ExplainHandshake turns the TLS alerts a server sends about this node's
// certificate into errors that name the case; other errors pass through.
// crypto/tls reports a peer's alert as a net.OpError "remote error" around
// an unexported type, so the alert is recognised by its text.
func ExplainHandshake(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "tls: expired certificate"):
		return fmt.Errorf("%w: the manager refused this node's certificate as expired or not yet valid (check the clock; rejoin with a token if it expired): %w", ErrExpired, err)
	case strings.Contains(msg, "tls: unknown certificate authority"):
		return fmt.Errorf("%w: the manager does not trust this node's CA (another cluster, or a root rotated away): %w", ErrWrongCA, err)
	case strings.Contains(msg, "tls: bad certificate"):
		return fmt.Errorf("%w: the manager refused this node's certificate: %w", ErrBadCertificate, err)
	}
	return err
}
