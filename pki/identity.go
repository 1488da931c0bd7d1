// Package pki is shoal's certificate authority and node credentials: the
// root CA that signs node certificates, the join tokens that let a new node
// ask for one, and the TLS configurations every link uses. It builds on the
// standard library only (crypto/x509, ECDSA P-256).
//
// A node's identity is its certificate: CN = node ID, OU = role,
// O = cluster ID. The CA, not the node, chooses all three.
package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
)

// Roles in certificates (the OU).
const (
	RoleManager  = "manager"
	RoleWorker   = "worker"
	RoleOperator = "operator"
)

// Sentinel errors; callers match them with errors.Is.
var (
	ErrBadCertificate = errors.New("bad certificate")
	ErrInvalidToken   = errors.New("invalid join token")
	ErrWrongDigest    = errors.New("root CA digest mismatch")
	ErrRotatedToken   = errors.New("join token was rotated")
	ErrWrongTokenKind = errors.New("wrong join token kind")
	ErrExpired        = errors.New("certificate expired")
	ErrNotYetValid    = errors.New("certificate not yet valid")
	ErrClockSkew      = errors.New("clock far off")
	ErrWrongCA        = errors.New("certificate from another CA")
	ErrNoCredentials  = errors.New("no credentials")
)

// Identity is who a certificate names.
type Identity struct {
	NodeID    string // CN
	Role      string // OU
	ClusterID string // O
}

// String is "role node-id in cluster".
func (i Identity) String() string {
	return fmt.Sprintf("%s %s in cluster %s", i.Role, i.NodeID, i.ClusterID)
}

// ValidRole reports whether role is one of the three roles.
func ValidRole(role string) bool {
	switch role {
	case RoleManager, RoleWorker, RoleOperator:
		return true
	}
	return false
}

// IdentityFromCert reads the identity a certificate names. It checks the
// shape only (one OU that is a known role, one O, a CN); whether the
// certificate is trusted is the verifier's job.
func IdentityFromCert(c *x509.Certificate) (Identity, error) {
	if c == nil {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrBadCertificate)
	}
	s := c.Subject
	if s.CommonName == "" {
		return Identity{}, fmt.Errorf("%w: no common name (node id)", ErrBadCertificate)
	}
	if len(s.OrganizationalUnit) != 1 || !ValidRole(s.OrganizationalUnit[0]) {
		return Identity{}, fmt.Errorf("%w: organizational unit %q is not one role of manager, worker, operator", ErrBadCertificate, s.OrganizationalUnit)
	}
	if len(s.Organization) != 1 || s.Organization[0] == "" {
		return Identity{}, fmt.Errorf("%w: organization %q is not one cluster id", ErrBadCertificate, s.Organization)
	}
	return Identity{NodeID: s.CommonName, Role: s.OrganizationalUnit[0], ClusterID: s.Organization[0]}, nil
}
