// Package ca is the managers' certificate authority: it decides who a
// joining node is (a new node ID, the role its token's kind gives) and
// signs its certificate with the root key kept in Raft, renews the
// certificates of nodes that have one, and keeps the join tokens. Every
// manager can sign: the key is in the replicated state, as in Swarm.
package ca

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/pki"
)

// ErrNoCA: the cluster has no CA in its state yet (the first leader
// records it right after it starts); the caller retries.
var (
	ErrNoCA = errors.New("the cluster has no CA yet")
	// ErrInvalid: a request the CA refuses as malformed.
	ErrInvalid = errors.New("invalid CA request")
)

// NewClusterCA makes the CA record of a new cluster from its root (which
// must hold its key): two join tokens with fresh secrets.
func NewClusterCA(root *pki.RootCA) (api.ClusterCA, error) {
	if !root.CanSign() {
		return api.ClusterCA{}, errors.New("new cluster CA: the root has no key")
	}
	w, err := pki.NewToken(root.Digest())
	if err != nil {
		return api.ClusterCA{}, err
	}
	m, err := pki.NewToken(root.Digest())
	if err != nil {
		return api.ClusterCA{}, err
	}
	return api.ClusterCA{RootCert: root.CertPEM(), RootKey: root.KeyPEM(), WorkerSecret: w.Secret, ManagerSecret: m.Secret}, nil
}

// Root is the current root of rec, with its key.
func Root(rec api.ClusterCA) (*pki.RootCA, error) {
	return pki.ParseRootCA(rec.RootCert, rec.RootKey)
}

// Signer is what signs certificates now: the root, or during a rotation
// the new key with the new root cross-signed by the old one as chain.
func Signer(rec api.ClusterCA) (*pki.RootCA, error) {
	root, err := Root(rec)
	if err != nil {
		return nil, err
	}
	if rec.Rotation == nil {
		return root, nil
	}
	return root.WithSigner(rec.Rotation.NewKey, rec.Rotation.CrossSigned)
}

// TrustedRoots are the roots a node trusts now (PEM): the root, and the new
// root during a rotation.
func TrustedRoots(rec api.ClusterCA) []byte {
	out := bytes.Clone(rec.RootCert)
	if rec.Rotation != nil {
		out = append(out, rec.Rotation.NewCert...)
	}
	return out
}

// Tokens are the current join tokens of rec.
func Tokens(rec api.ClusterCA) (worker, manager pki.Token, err error) {
	root, err := pki.ParseRootCA(rec.RootCert, nil)
	if err != nil {
		return pki.Token{}, pki.Token{}, err
	}
	d := root.Digest()
	return pki.Token{Digest: d, Secret: rec.WorkerSecret}, pki.Token{Digest: d, Secret: rec.ManagerSecret}, nil
}

// RotateToken returns rec with a new secret for role's token; the old one
// is remembered (so a join with it is refused as rotated) and stops
// working for new joins. Nodes that joined with it keep their
// certificates.
func RotateToken(rec api.ClusterCA, role string) (api.ClusterCA, error) {
	out := rec.Clone()
	root, err := pki.ParseRootCA(rec.RootCert, nil)
	if err != nil {
		return out, err
	}
	t, err := pki.NewToken(root.Digest())
	if err != nil {
		return out, err
	}
	switch role {
	case pki.RoleWorker:
		out.RetiredSecrets = retire(out.RetiredSecrets, out.WorkerSecret)
		out.WorkerSecret = t.Secret
	case pki.RoleManager:
		out.RetiredSecrets = retire(out.RetiredSecrets, out.ManagerSecret)
		out.ManagerSecret = t.Secret
	default:
		return out, fmt.Errorf("%w: role %q: want worker or manager", ErrInvalid, role)
	}
	return out, nil
}

// retire appends s to the retired secrets, dropping the oldest beyond the
// bound.
func retire(list []string, s string) []string {
	list = append(list, s)
	if n := len(list) - api.MaxRetiredSecrets; n > 0 {
		list = slices.Delete(list, 0, n)
	}
	return list
}

// CheckToken reads a join token and says which role it gives, refusing it
// with an error that names the case: not a token, a token of another CA
// (wrong digest), a rotated one, an unknown secret, or a token of the
// other kind than the process that presents it (want is the role the
// joining process runs as; "" accepts either).
func CheckToken(rec api.ClusterCA, token, want string) (string, error) {
	t, err := pki.ParseToken(token)
	if err != nil {
		return "", err
	}
	worker, manager, err := Tokens(rec)
	if err != nil {
		return "", err
	}
	if t.Digest != worker.Digest {
		return "", fmt.Errorf("%w: the token is for a root CA with digest %s, this cluster's root has digest %s: a token of another cluster, or of a root since rotated; get a new one with shoalctl cluster join-token",
			pki.ErrWrongDigest, t.Digest, worker.Digest)
	}
	role := ""
	switch {
	case pki.SecretEqual(t.Secret, worker.Secret):
		role = pki.RoleWorker
	case pki.SecretEqual(t.Secret, manager.Secret):
		role = pki.RoleManager
	}
	if role == "" {
		for _, old := range rec.RetiredSecrets {
			if pki.SecretEqual(t.Secret, old) {
				return "", fmt.Errorf("%w: new nodes cannot join with it; get the current one with shoalctl cluster join-token", pki.ErrRotatedToken)
			}
		}
		return "", fmt.Errorf("%w: its secret is not one of this cluster's join tokens", pki.ErrInvalidToken)
	}
	if want != "" && want != role {
		return "", fmt.Errorf("%w: this is a %s token and a %s cannot join with it; get the %s token with shoalctl cluster join-token %s",
			pki.ErrWrongTokenKind, role, want, want, want)
	}
	return role, nil
}

// NewNodeID returns a new node ID: 32 random hex digits.
func NewNodeID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("ca: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// Issue signs a certificate for id with the cluster's certificate life.
// The cluster ID is the root's; a certificate that would outlive the root
// is cut at the root's end.
func Issue(rec api.ClusterCA, settings api.ClusterSettings, csr []byte, id pki.Identity, life time.Duration, now time.Time) ([]byte, error) {
	signer, err := Signer(rec)
	if err != nil {
		return nil, err
	}
	id.ClusterID = signer.ClusterID()
	if life == 0 {
		life = settings.CertLife()
	}
	if end := signer.Cert.NotAfter.Sub(now); life > end {
		life = end
	}
	return signer.Issue(csr, id, now, life)
}
