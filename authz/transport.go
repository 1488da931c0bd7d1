package authz

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// localInfo is the AuthInfo of a connection on the unix control socket.
// The socket is root-only (0600): whoever can open it can read the
// manager's keys anyway, so it counts as an operator.
type localInfo struct{ credentials.CommonAuthInfo }

func (localInfo) AuthType() string { return "local" }

// linkCreds speaks TLS on TCP connections and nothing on unix sockets: the
// one gRPC server of a manager serves both, and the socket's file mode is
// its access control.
type linkCreds struct {
	tls credentials.TransportCredentials
}

func newLinkCreds(cfg *tls.Config) credentials.TransportCredentials {
	return &linkCreds{tls: credentials.NewTLS(cfg)}
}

func isUnix(c net.Conn) bool {
	return c.LocalAddr().Network() == "unix" || c.RemoteAddr().Network() == "unix"
}

func (l *linkCreds) ClientHandshake(ctx context.Context, authority string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if isUnix(c) {
		return c, localInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
	}
	return l.tls.ClientHandshake(ctx, authority, c)
}

func (l *linkCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if isUnix(c) {
		return c, localInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
	}
	return l.tls.ServerHandshake(c)
}

func (l *linkCreds) Info() credentials.ProtocolInfo { return l.tls.Info() }

func (l *linkCreds) Clone() credentials.TransportCredentials {
	return &linkCreds{tls: l.tls.Clone()}
}

// OverrideServerName is part of the TransportCredentials interface.
func (l *linkCreds) OverrideServerName(name string) error {
	//lint:ignore SA1019 the interface still has the method; it passes it on
	return l.tls.OverrideServerName(name)
}

// ServerOptions are the options of every shoal gRPC server: the message
// limits and keepalive of shoalpb.ServerOptions, TLS from cfg (unix
// sockets excepted) and the guard's interceptors. A nil cfg serves
// plaintext without authorisation: only benchmarks that measure what TLS
// costs ask for it.
func ServerOptions(cfg *tls.Config, g *Guard) []grpc.ServerOption {
	return MeteredServerOptions(cfg, g, nil)
}

// MeteredServerOptions are ServerOptions with every call timed by m (nil:
// not timed). The timing wraps the guard, so that refusals are counted.
func MeteredServerOptions(cfg *tls.Config, g *Guard, m *RequestMetrics) []grpc.ServerOption {
	opts := shoalpb.ServerOptions()
	if m != nil {
		opts = append(opts, grpc.ChainUnaryInterceptor(m.Unary), grpc.ChainStreamInterceptor(m.Stream))
	}
	if cfg == nil {
		return opts
	}
	return append(opts, grpc.Creds(newLinkCreds(cfg)),
		grpc.ChainUnaryInterceptor(g.Unary), grpc.ChainStreamInterceptor(g.Stream))
}

// DialOptions are the options every shoal client dials with: the call
// limits and keepalive of shoalpb, and TLS from cfg (unix sockets excepted).
// A nil cfg dials plaintext, which only benchmarks and the tests of
// refusals ask for.
func DialOptions(cfg *tls.Config) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if cfg != nil {
		creds = newLinkCreds(cfg)
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(creds), shoalpb.CallOptions(), shoalpb.ClientKeepalive()}
}

// ClientTLS is creds' client configuration for a link to a peer of one of
// roles (creds.ClientTLS accepts managers only): a manager reading task
// logs dials an agent, whose certificate is a worker's.
func ClientTLS(creds *pki.Credentials, roles ...string) *tls.Config {
	cfg := creds.ClientTLS()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		id, err := creds.VerifyPeer(cs.PeerCertificates, "")
		if err != nil {
			return err
		}
		if !slices.Contains(roles, id.Role) {
			return fmt.Errorf("%w: peer %s has role %s, want %s", ErrRole, id.NodeID, id.Role, strings.Join(roles, " or "))
		}
		return nil
	}
	return cfg
}
