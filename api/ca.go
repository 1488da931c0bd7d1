package api

import (
	"fmt"
	"time"
)

// Node certificate lifetimes a cluster may set (shoalctl cluster update
// --cert-expiry).
const (
	// DefaultCertExpiry is a node certificate's life when the cluster
	// setting is zero.
	DefaultCertExpiry = 90 * 24 * time.Hour
	// MinCertExpiry is the shortest: renewal starts at half the life, and
	// shorter certificates leave a node little time to reach a manager.
	MinCertExpiry = time.Hour
	// MaxCertExpiry is the longest: a certificate stays usable as long as
	// it is valid, whatever happens to its node.
	MaxCertExpiry = 5 * 365 * 24 * time.Hour
)

// MaxRetiredSecrets bounds how many rotated join-token secrets the CA
// remembers (to tell a rotated token from a wrong one).
const MaxRetiredSecrets = 16

// CertLife is the node certificate life these settings give.
func (s ClusterSettings) CertLife() time.Duration {
	if s.CertExpiry == 0 {
		return DefaultCertExpiry
	}
	return s.CertExpiry.Std()
}

// validateCertExpiry checks the cert_expiry setting.
func validateCertExpiry(d Duration) error {
	if d == 0 {
		return nil
	}
	if d.Std() < MinCertExpiry || d.Std() > MaxCertExpiry {
		return fieldErr("cert_expiry", d.Std().String(), "want between %s and %s (0: the default, %s)",
			MinCertExpiry, fmtHours(MaxCertExpiry), fmtHours(DefaultCertExpiry))
	}
	return nil
}

func fmtHours(d time.Duration) string { return fmt.Sprintf("%dh", int64(d/time.Hour)) }

// ClusterCA is the cluster's certificate authority as kept in Raft: every
// manager holds the root key and can sign (as Swarm does), and the join
// tokens' secrets. It is never sent to clients as a whole: the control API
// hands out tokens and certificates, never the key.
type ClusterCA struct {
	// RootCert and RootKey are the current root, in PEM.
	RootCert []byte `json:"root_cert"`
	RootKey  []byte `json:"root_key"`
	// WorkerSecret and ManagerSecret are the secrets of the two join
	// tokens (the digest part is the root's).
	WorkerSecret  string `json:"worker_secret"`
	ManagerSecret string `json:"manager_secret"`
	// RetiredSecrets are rotated secrets, newest last, at most
	// MaxRetiredSecrets: a join with one is refused as "rotated".
	RetiredSecrets []string `json:"retired_secrets,omitempty"`
	// Rotation is set while the root is being replaced.
	Rotation *CARotation `json:"rotation,omitempty"`
	// Version counts changes; a change names the version it read.
	Version   uint64    `json:"version"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// CARotation is a root rotation in progress: certificates are signed by
// the new key and carry the new root cross-signed by the old one, both
// roots are trusted, and nodes renew until all hold a certificate of the
// new root; then the old root is dropped.
type CARotation struct {
	NewCert []byte `json:"new_cert"`
	NewKey  []byte `json:"new_key"`
	// CrossSigned is the new root's key certified by the old root.
	CrossSigned []byte    `json:"cross_signed"`
	StartedAt   time.Time `json:"started_at"`
}

// Clone returns a deep copy.
func (c ClusterCA) Clone() ClusterCA {
	out := c
	out.RetiredSecrets = append([]string(nil), c.RetiredSecrets...)
	if c.Rotation != nil {
		r := *c.Rotation
		out.Rotation = &r
	}
	return out
}
