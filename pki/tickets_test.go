package pki_test

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/pkitest"
)

// exchange runs one TLS 1.3 exchange over loopback (the client reads a
// byte, which also takes in the server's session ticket) and returns the
// server's view of it.
func exchange(t testing.TB, server, client *tls.Config) tls.ConnectionState {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	states := make(chan tls.ConnectionState, 1)
	go func() {
		defer close(states)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if tc.Handshake() != nil {
			return
		}
		if _, err := tc.Write([]byte("x")); err == nil {
			states <- tc.ConnectionState()
		}
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), client)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("read: %v", err)
	}
	st, ok := <-states
	if !ok {
		t.Fatal("the server side of the exchange failed")
	}
	return st
}

// TestSessionResumesOnAnotherManager: a client resumes on a second
// manager the session the first one gave it when both derive their ticket
// keys from the same secret, and the server still sees the client's
// certificate; a manager with another secret makes a full handshake.
func TestSessionResumesOnAnotherManager(t *testing.T) {
	ca := pkitest.NewTestCA(t)
	m1, m2, m3 := ca.Credentials("m1", pki.RoleManager), ca.Credentials("m2", pki.RoleManager), ca.Credentials("m3", pki.RoleManager)
	for _, m := range []*pki.Credentials{m1, m2} {
		if err := m.SetTicketSecret([]byte("the cluster's root key")); err != nil {
			t.Fatal(err)
		}
	}
	if err := m3.SetTicketSecret([]byte("another cluster's root key")); err != nil {
		t.Fatal(err)
	}
	client := ca.Credentials("w1", pki.RoleWorker).ClientTLS()
	if st := exchange(t, m1.ServerTLS(), client); st.DidResume {
		t.Fatal("the first connection resumed a session")
	}
	st := exchange(t, m2.ServerTLS(), client)
	if !st.DidResume {
		t.Fatal("the second manager did not resume the session the first one issued")
	}
	if len(st.PeerCertificates) == 0 {
		t.Fatal("a resumed session lost the client's certificate")
	}
	id, err := pki.IdentityFromCert(st.PeerCertificates[0])
	if err != nil || id.NodeID != "w1" {
		t.Fatalf("resumed session's client: %v %v, want w1", id, err)
	}
	if st := exchange(t, m3.ServerTLS(), client); st.DidResume {
		t.Fatal("a manager with other ticket keys resumed the session")
	}
}

// BenchmarkHandshake: one mutual TLS 1.3 connection from a worker to a
// manager, with a full handshake beside one that resumes a session
// another manager of the cluster issued (what an agent does when its
// leader changes). Both sides' CPU is counted: they run in this process.
func BenchmarkHandshake(b *testing.B) {
	ca := pkitest.NewTestCA(b)
	m1, m2 := ca.Credentials("m1", pki.RoleManager), ca.Credentials("m2", pki.RoleManager)
	for _, m := range []*pki.Credentials{m1, m2} {
		if err := m.SetTicketSecret([]byte("the cluster's root key")); err != nil {
			b.Fatal(err)
		}
	}
	worker := ca.Credentials("w1", pki.RoleWorker)
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			cfg := worker.ClientTLS()
			cfg.ClientSessionCache = nil
			exchange(b, m2.ServerTLS(), cfg)
		}
	})
	b.Run("resumed", func(b *testing.B) {
		client := worker.ClientTLS()
		exchange(b, m1.ServerTLS(), client)
		for b.Loop() {
			if !exchange(b, m2.ServerTLS(), client).DidResume {
				b.Fatal("not resumed")
			}
		}
	})
}
