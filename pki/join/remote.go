package join

import (
	"context"
	"errors"
	"fmt"

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
}

var _ pki.Issuer = (*Remote)(nil)

// Status asks a manager whether to renew now and which roots to trust.
func (r *Remote) Status(ctx context.Context) (bool, []byte, error) {
	var resp *shoalpb.NodeCertificateStatusResponse
	err := r.each(ctx, func(ctx context.Context, c shoalpb.NodeCAClient) (err error) {
		resp, err = c.NodeCertificateStatus(ctx, &shoalpb.NodeCertificateStatusRequest{})
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
		err := call(ctx, addr, r.Creds.ClientTLS(), f)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return errors.Join(errs...)
}
