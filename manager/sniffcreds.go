package manager

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"time"

	"google.golang.org/grpc/credentials"
)

// tlsRecordHandshake is the first byte of every TLS connection.
const tlsRecordHandshake = 0x16

// sniffHandshakeTimeout bounds reading the first byte of a connection.
const sniffHandshakeTimeout = 10 * time.Second

// sniffCreds serves TLS to clients that speak it and plaintext to the
// others, on one listener. It is the step between a plaintext cluster and
// one where every link is mutual TLS: joining nodes reach the NodeCA over
// TLS (they check the root against their token) while the other links
// have not moved yet. Once they have, credentials.NewTLS(ServerTLS())
// replaces it.
type sniffCreds struct {
	tls credentials.TransportCredentials
}

func newSniffCreds(cfg *tls.Config) credentials.TransportCredentials {
	return &sniffCreds{tls: credentials.NewTLS(cfg)}
}

func (s *sniffCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if err := conn.SetReadDeadline(time.Now().Add(sniffHandshakeTimeout)); err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(conn, 1)
	first, err := br.Peek(1)
	if err != nil {
		return nil, nil, err
	}
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return nil, nil, err
	}
	pc := &peekedConn{Conn: conn, r: br}
	if first[0] == tlsRecordHandshake {
		return s.tls.ServerHandshake(pc)
	}
	return pc, plainInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (s *sniffCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return s.tls.ClientHandshake(ctx, authority, conn)
}

func (s *sniffCreds) Info() credentials.ProtocolInfo { return s.tls.Info() }

func (s *sniffCreds) Clone() credentials.TransportCredentials {
	return &sniffCreds{tls: s.tls.Clone()}
}

func (s *sniffCreds) OverrideServerName(string) error { return nil }

// plainInfo is the AuthInfo of a plaintext connection.
type plainInfo struct{ credentials.CommonAuthInfo }

func (plainInfo) AuthType() string { return "insecure" }

// peekedConn reads first what was peeked.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
