// Package join is the node side of the NodeCA API: a new node trades a
// join token for its certificate, a node with one renews it. It checks
// the CA a manager shows against the token's digest before the token's
// secret leaves the node.
package join

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

const (
	// attemptTimeout bounds one call to one manager.
	attemptTimeout = 5 * time.Second
	// retryInterval is the pause between rounds over the managers while
	// none can issue (no CA recorded yet, no manager up).
	retryInterval = 500 * time.Millisecond
	// defaultTimeout bounds a whole join.
	defaultTimeout = 60 * time.Second
)

// Options say how a node gets its credentials.
type Options struct {
	// Dir is the node's data dir, where ca.pem, cert.pem and key.pem are
	// kept.
	Dir string
	// Managers are gRPC addresses of managers; any one will do.
	Managers []string
	// Token is the join token; needed only when Dir holds no credentials.
	Token string
	// Role is what this process runs as: pki.RoleWorker or
	// pki.RoleManager. A token of the other kind is refused.
	Role string
	// Timeout bounds the join (default 60 s).
	Timeout time.Duration
	// Now is the local clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// ErrNoToken: the node holds no credentials and no token was given.
var ErrNoToken = errors.New("this node has not joined a cluster")

// Obtain returns the node's credentials: those kept in Dir (a restart),
// or new ones from a manager, traded for Token (the first start). The
// node ID is the certificate's.
func Obtain(ctx context.Context, o Options) (*pki.Credentials, error) {
	creds, err := pki.LoadCredentials(o.Dir)
	switch {
	case err == nil:
		if id := creds.Identity(); id.Role != o.Role {
			return nil, fmt.Errorf("the certificate in %s is a %s's (node %s); this process runs as a %s: use another data dir", o.Dir, id.Role, id.NodeID, o.Role)
		}
		return creds, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	case o.Token == "":
		return nil, fmt.Errorf("%w: no certificate in %s; give --token (shoalctl cluster join-token %s prints it)", ErrNoToken, o.Dir, o.Role)
	case len(o.Managers) == 0:
		return nil, fmt.Errorf("%w: give --join with a manager's address", ErrNoToken)
	}
	return Join(ctx, o)
}

// Join trades the token for credentials at one of the managers and saves
// them in Dir. It retries while no manager can issue yet; a refusal (a
// wrong digest, a rotated or unknown token, a token of the other kind)
// ends it at once.
func Join(ctx context.Context, o Options) (*pki.Credentials, error) {
	tok, err := pki.ParseToken(o.Token)
	if err != nil {
		return nil, err
	}
	if len(o.Managers) == 0 {
		return nil, fmt.Errorf("%w: give --join with a manager's address", ErrNoToken)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	log := o.Logger.With("component", "join")
	// Each node starts at its own place in the list: a thousand hosts
	// that boot together spread their handshakes and signing requests
	// over the managers instead of all queueing at the first.
	start := rand.IntN(len(o.Managers))
	for {
		var errs []error
		for i := range o.Managers {
			addr := o.Managers[(start+i)%len(o.Managers)]
			creds, err := joinVia(ctx, addr, tok, o)
			if err == nil {
				log.Info("joined the cluster", "via", addr, "node_id", creds.Identity().NodeID, "role", creds.Identity().Role)
				return creds, nil
			}
			if !retryable(err) {
				return nil, fmt.Errorf("join via %s: %w", addr, err)
			}
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		}
		err := errors.Join(errs...)
		log.Info("no manager could issue a certificate yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("join: no manager issued a certificate within %s: %w", timeout, err)
		case <-time.After(retryInterval):
		}
	}
}

// retryable: no manager reachable, or none with a CA yet.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// joinVia runs the two steps at one manager: fetch the root without
// verifying the server and check it against the token's digest; only then
// send the token, over a connection that verifies the server against that
// root.
func joinVia(ctx context.Context, addr string, tok pki.Token, o Options) (*pki.Credentials, error) {
	root, err := fetchRoot(ctx, addr)
	if err != nil {
		return nil, err
	}
	if got := pki.DigestOf(root.Cert); got != tok.Digest {
		return nil, fmt.Errorf("%w: the manager at %s shows a root CA with digest %s, the token names %s: the token was not sent (another cluster, or someone in between)",
			pki.ErrWrongDigest, addr, got, tok.Digest)
	}
	keyPEM, csr, err := pki.NewKeyAndCSR()
	if err != nil {
		return nil, err
	}
	var resp *shoalpb.NodeCertificate
	err = call(ctx, addr, pki.RootTLS(root.Cert), func(ctx context.Context, c shoalpb.NodeCAClient) (err error) {
		resp, err = c.IssueNodeCertificate(ctx, &shoalpb.IssueNodeCertificateRequest{Token: tok.String(), Csr: csr, Role: o.Role})
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := CheckClock(resp.GetServerTime().AsTime(), o.Now()); err != nil {
		return nil, err
	}
	creds, err := pki.NewCredentials(resp.GetCertificate(), keyPEM, resp.GetTrustedRoots())
	if err != nil {
		return nil, fmt.Errorf("the certificate the manager issued: %w", err)
	}
	if id := creds.Identity(); id.Role != o.Role || id.ClusterID != root.ClusterID() {
		return nil, fmt.Errorf("%w: the manager issued a certificate for %s, want a %s of cluster %s", pki.ErrBadCertificate, id, o.Role, root.ClusterID())
	}
	if err := creds.SaveTo(o.Dir); err != nil {
		return nil, err
	}
	return creds, nil
}

// fetchRoot asks addr for its root CA over TLS without checking the
// server: nothing secret is sent, and the answer is checked by the caller.
func fetchRoot(ctx context.Context, addr string) (*pki.RootCA, error) {
	var resp *shoalpb.GetRootCAResponse
	err := call(ctx, addr, pki.InsecureFetchTLS(), func(ctx context.Context, c shoalpb.NodeCAClient) (err error) {
		resp, err = c.GetRootCA(ctx, &shoalpb.GetRootCARequest{})
		return err
	})
	if err != nil {
		return nil, err
	}
	root, err := pki.ParseRootCA(resp.GetRootCa(), nil)
	if err != nil {
		return nil, fmt.Errorf("the root CA the manager at %s shows: %w", addr, err)
	}
	return root, nil
}

// CheckClock refuses to go on when this node's clock is further from the
// manager's than certificates are backdated: the node would see its own
// certificate as not yet valid, or others' as expired.
func CheckClock(server, local time.Time) error {
	skew := local.Sub(server)
	if skew > pki.Backdate || skew < -pki.Backdate {
		dir := "ahead of"
		if skew < 0 {
			dir, skew = "behind", -skew
		}
		return fmt.Errorf("%w: this node's clock (%s) is %s %s the manager's (%s), more than the %s certificates allow: set the clock (NTP) and start again",
			pki.ErrClockSkew, local.UTC().Format(time.RFC3339), skew.Round(time.Second), dir, server.UTC().Format(time.RFC3339), pki.Backdate)
	}
	return nil
}

// call dials addr with cfg, runs f with a bounded context, and closes.
func call(ctx context.Context, addr string, cfg *tls.Config, f func(context.Context, shoalpb.NodeCAClient) error) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)), shoalpb.CallOptions())
	if err != nil {
		return status.Errorf(codes.Unavailable, "dial %s: %v", addr, err)
	}
	defer conn.Close()
	return attempt(ctx, conn, f)
}

// callOver runs f over the connection to addr that conn returns (one the
// caller keeps), with a bounded context.
func callOver(ctx context.Context, conn func(string) (grpc.ClientConnInterface, error), addr string,
	f func(context.Context, shoalpb.NodeCAClient) error) error {
	cc, err := conn(addr)
	if err != nil {
		return status.Errorf(codes.Unavailable, "connect to %s: %v", addr, err)
	}
	return attempt(ctx, cc, f)
}

// attempt runs f over conn within attemptTimeout.
func attempt(ctx context.Context, conn grpc.ClientConnInterface, f func(context.Context, shoalpb.NodeCAClient) error) error {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	err := f(ctx, shoalpb.NewNodeCAClient(conn))
	if status.Code(err) == codes.Unavailable {
		// A manager that refuses this node's certificate shows up as an
		// unavailable connection: name the refusal, and do not retry it.
		if named := pki.ExplainHandshake(err); named != err {
			return named
		}
	}
	return err
}
