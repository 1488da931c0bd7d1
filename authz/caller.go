package authz

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/shoal-sched/shoal/pki"
)

// Errors of identification, wrapped with the details.
var (
	// ErrNoCertificate: the caller presented no verified certificate.
	ErrNoCertificate = errors.New("no client certificate")
	// ErrBadCertificate: the certificate does not name a node, a role and
	// a cluster.
	ErrBadCertificate = errors.New("certificate does not name a shoal identity")
)

// Caller is who makes a call, as the certificate (or the unix socket)
// proves it.
type Caller struct {
	NodeID, Role, ClusterID string
	// Local: the call came through the root-only unix control socket.
	Local bool
	// Via is the manager that forwarded the call on the caller's behalf
	// ("" for a direct call).
	Via string
}

func (c Caller) String() string {
	switch {
	case c.Local:
		return "the local control socket (operator)"
	case c.Via != "":
		return fmt.Sprintf("%s %s (forwarded by manager %s)", c.Role, c.NodeID, c.Via)
	}
	return fmt.Sprintf("%s %s", c.Role, c.NodeID)
}

// FromCert reads the identity a shoal certificate carries: CN = node ID,
// OU = role, O = cluster ID.
func FromCert(c *x509.Certificate) (Caller, error) {
	id, err := pki.IdentityFromCert(c)
	if err != nil {
		return Caller{}, err
	}
	return Caller{NodeID: id.NodeID, Role: id.Role, ClusterID: id.ClusterID}, nil
}

type callerKey struct{}

// WithCaller returns ctx carrying c as the caller of the call it serves.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller the interceptors identified for the call
// ctx serves.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// peerCaller identifies the direct peer of a call from its transport: a
// verified TLS client certificate, or the unix control socket.
func peerCaller(ctx context.Context) (Caller, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Caller{}, ErrNoCertificate
	}
	switch ai := p.AuthInfo.(type) {
	case localInfo:
		return Caller{NodeID: "local", Role: RoleOperator, Local: true}, nil
	case credentials.TLSInfo:
		if len(ai.State.VerifiedChains) == 0 || len(ai.State.VerifiedChains[0]) == 0 {
			return Caller{}, ErrNoCertificate
		}
		return FromCert(ai.State.VerifiedChains[0][0])
	}
	return Caller{}, ErrNoCertificate
}
