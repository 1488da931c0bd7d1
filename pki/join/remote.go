package join

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"

	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// Remote is a pki.Issuer at the managers: it calls NodeCA with the node's
// current certificate, trying each manager in turn.
type Remote struct {
	Creds *pki.Credentials
	// Managers returns the managers' gRPC addresses as the node knows
	// them now.
	Managers func() []string
	// Conn, when set, returns a connection to a manager that the node
	// keeps open (an agent's session connections): a node that asks every
	// minute then costs a manager a call, not a TLS handshake — 5,000
	// agents that dialled for each question kept a leader's core a quarter
	// busy with handshakes. Nil: each call dials and closes its own.
	Conn func(addr string) (grpc.ClientConnInterface, error)
}

var _ pki.Issuer = (*Remote)(nil)

// Status asks a manager whether to renew now and which roots to trust.
func (r *Remote) Status(ctx context.Context) (bool, []byte, error) {
	var resp *shoalpb.NodeCertificateStatusResponse
	err := r.each(ctx, func(ctx context.Context, c shoalpb.NodeCAClient) (err error) {
		// The certificate held now: over a kept connection, the one it
		// was opened with may be the one renewed since.
		resp, err = c.NodeCertificateStatus(ctx, &shoalpb.NodeCertificateStatusRequest{Certificate: r.Creds.CertPEM()})
		return err
	})
	if err != nil {
		return false, nil, err
	}
	return resp.GetRenew(), resp.GetTrustedRoots(), nil
}

// Renew asks a manager for a new certificate over csr.
func (r *Remote) Renew(ctx context.Context, csr []byte) ([]byte, []byte, error) {
	var resp *shoalpb.NodeCertificate
	err := r.each(ctx, func(ctx context.Context, c shoalpb.NodeCAClient) (err error) {
		resp, err = c.RenewNodeCertificate(ctx, &shoalpb.RenewNodeCertificateRequest{Csr: csr})
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if id := r.Creds.Identity(); resp.GetNodeId() != id.NodeID {
		return nil, nil, fmt.Errorf("%w: renewal answered for node %s, this is %s", pki.ErrBadCertificate, resp.GetNodeId(), id.NodeID)
	}
	return resp.GetCertificate(), resp.GetTrustedRoots(), nil
}

func (r *Remote) each(ctx context.Context, f func(context.Context, shoalpb.NodeCAClient) error) error {
	if err := r.Creds.CheckOwn(); err != nil {
		return err
	}
	addrs := r.Managers()
	if len(addrs) == 0 {
		return errors.New("no manager address known")
	}
	var errs []error
	for _, addr := range addrs {
		var err error
		if r.Conn != nil {
			err = callOver(ctx, r.Conn, addr, f)
		} else {
			err = call(ctx, addr, r.Creds.ClientTLS(), f)
		}
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return errors.Join(errs...)
}
