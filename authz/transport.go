package authz

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

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

func (l *linkCreds) OverrideServerName(name string) error {
	return l.tls.OverrideServerName(name) //nolint:staticcheck // part of the interface
}

// ServerOptions are the options of every shoal gRPC server: the message
// limits and keepalive of shoalpb.ServerOptions, TLS from cfg (unix
// sockets excepted) and the guard's interceptors. A nil cfg serves
// plaintext; only tests pass it (see Plaintext).
func ServerOptions(cfg *tls.Config, g *Guard) []grpc.ServerOption {
	opts := shoalpb.ServerOptions()
	if cfg != nil {
		opts = append(opts, grpc.Creds(newLinkCreds(cfg)))
	}
	return append(opts, grpc.ChainUnaryInterceptor(g.Unary), grpc.ChainStreamInterceptor(g.Stream))
}

// DialOptions are the options every shoal client dials with: the call
// limits and keepalive of shoalpb, and TLS from cfg (unix sockets excepted).
// cfg must not be nil outside tests (see Plaintext).
func DialOptions(cfg *tls.Config) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if cfg != nil {
		creds = newLinkCreds(cfg)
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(creds), shoalpb.CallOptions(), shoalpb.ClientKeepalive()}
}

// PeerIs returns a copy of cfg that, after the usual chain verification,
// accepts only a peer certificate of the given role in the given cluster:
// an agent talks only to managers, a manager reads logs only from agents.
func PeerIs(cfg *tls.Config, clusterID string, roles ...string) *tls.Config {
	out := cfg.Clone()
	prev := out.VerifyConnection
	out.VerifyConnection = func(cs tls.ConnectionState) error {
		if prev != nil {
			if err := prev(cs); err != nil {
				return err
			}
		}
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("peer %s: %w", cs.ServerName, ErrNoCertificate)
		}
		id, err := FromCert(cs.PeerCertificates[0])
		if err != nil {
			return err
		}
		if id.ClusterID != clusterID {
			return fmt.Errorf("%w: peer %s belongs to cluster %q, not %q", ErrWrongCluster, id.NodeID, id.ClusterID, clusterID)
		}
		for _, r := range roles {
			if id.Role == r {
				return nil
			}
		}
		return fmt.Errorf("%w: peer %s is a %s, want %v", ErrRole, id.NodeID, id.Role, roles)
	}
	return out
}
