package pki_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/pkitest"
)

// handshake runs one TLS 1.3 exchange over loopback and returns the
// client's and the server's view. The client reads a byte: with TLS 1.3 a
// refused client certificate shows up on the first read, not the dial.
//
//lint:ignore ST1008 the two errors are the client's and the server's; peer is what the client read
func handshake(t *testing.T, server, client *tls.Config) (clientErr, serverErr error, peer []byte) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			done <- err
			return
		}
		_, err = tc.Write([]byte("x"))
		done <- err
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), client)
	if err == nil {
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1)
		_, err = io.ReadFull(c, buf)
		peer = buf
	}
	return err, <-done, peer
}

func TestMutualTLS(t *testing.T) {
	ca := pkitest.NewTestCA(t)
	other := pkitest.NewTestCA(t)
	mgr := ca.Credentials("m1", pki.RoleManager)
	worker := ca.Credentials("w1", pki.RoleWorker)
	now := time.Now()
	expired := ca.CredentialsFor(pki.Identity{NodeID: "w2", Role: pki.RoleWorker, ClusterID: ca.ClusterID}, now.Add(-48*time.Hour), 2*time.Hour)
	future := ca.CredentialsFor(pki.Identity{NodeID: "w3", Role: pki.RoleWorker, ClusterID: ca.ClusterID}, now.Add(48*time.Hour), 2*time.Hour)

	cases := []struct {
		name       string
		server     *pki.Credentials
		client     *tls.Config
		wantClient error // nil: success
		wantServer error
	}{
		{"worker to manager", mgr, worker.ClientTLS(), nil, nil},
		{"no client certificate is let through the handshake", mgr, pki.RootTLS(ca.Root.Cert), nil, nil},
		{"client from another CA", mgr, other.Credentials("x", pki.RoleWorker).ClientTLS(), pki.ErrWrongCA, nil},
		{"expired client", mgr, expired.ClientTLS(), pki.ErrExpired, nil},
		{"client not yet valid", mgr, future.ClientTLS(), pki.ErrExpired, nil},
		{"server is a worker", ca.Credentials("w9", pki.RoleWorker), mgr.ClientTLS(), pki.ErrBadCertificate, nil},
		{"server from another CA", other.Credentials("m", pki.RoleManager), worker.ClientTLS(), pki.ErrWrongCA, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cerr, _, _ := handshake(t, tc.server.ServerTLS(), tc.client)
			cerr = pki.ExplainHandshake(cerr)
			if tc.wantClient == nil {
				if cerr != nil {
					t.Fatalf("client: %v", cerr)
				}
				return
			}
			if !errors.Is(cerr, tc.wantClient) {
				t.Fatalf("client error %v, want %v", cerr, tc.wantClient)
			}
		})
	}
}

// TestServerSeesIdentity: the server side reads the client's identity from
// the verified chain.
func TestServerSeesIdentity(t *testing.T) {
	ca := pkitest.NewTestCA(t)
	mgr := ca.Credentials("m1", pki.RoleManager)
	worker := ca.Credentials("w1", pki.RoleWorker)
	got := make(chan pki.Identity, 1)
	srv := mgr.ServerTLS()
	inner := srv.GetConfigForClient
	srv.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		cfg, err := inner(h)
		if err != nil {
			return nil, err
		}
		verify := cfg.VerifyConnection
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := verify(cs); err != nil {
				return err
			}
			id, err := mgr.VerifyPeer(cs.PeerCertificates, "")
			if err != nil {
				return err
			}
			got <- id
			return nil
		}
		return cfg, nil
	}
	if cerr, serr, _ := handshake(t, srv, worker.ClientTLS()); cerr != nil || serr != nil {
		t.Fatalf("client %v, server %v", cerr, serr)
	}
	want := pki.Identity{NodeID: "w1", Role: pki.RoleWorker, ClusterID: ca.ClusterID}
	if id := <-got; id != want {
		t.Fatalf("server saw %v, want %v", id, want)
	}
}
