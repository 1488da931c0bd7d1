package raftstream

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/pkitest"
)

// revocable admits managers until they are revoked.
type revocable struct {
	mu      sync.Mutex
	revoked map[string]bool
}

func (r *revocable) admit(c authz.Caller) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.revoked[c.NodeID] {
		return errors.New("revoked")
	}
	if c.Role != pki.RoleManager {
		return errors.New("not a manager")
	}
	return nil
}

func newStream(t *testing.T, creds *pki.Credentials, admit func(authz.Caller) error) *Stream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Listener: ln, ServerTLS: creds.ServerTLS(), ClientTLS: creds.ClientTLS(), Admit: admit})
	t.Cleanup(func() { s.Close() })
	return s
}

// serveEcho answers every connection the stream accepts by echoing it.
func serveEcho(s *Stream) {
	go func() {
		for {
			c, err := s.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
}

// TestRevokedPeerIsCutAndRefused: CloseNode closes an open connection of
// a revoked peer at once, and the peer's next dial is refused.
func TestRevokedPeerIsCutAndRefused(t *testing.T) {
	ca := pkitest.NewTestCA(t)
	gate := &revocable{revoked: map[string]bool{}}
	server := newStream(t, ca.Credentials("m1", pki.RoleManager), gate.admit)
	serveEcho(server)
	peer := newStream(t, ca.Credentials("m2", pki.RoleManager), gate.admit)

	conn, err := peer.Dial(raft.ServerAddress(server.Addr().String()), 2*time.Second)
	if err != nil {
		t.Fatalf("dial before the revocation: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatalf("echo before the revocation: %v", err)
	}

	gate.mu.Lock()
	gate.revoked["m2"] = true
	gate.mu.Unlock()
	if n := server.CloseNode("m2"); n != 1 {
		t.Fatalf("CloseNode closed %d connections, want 1", n)
	}
	if err := conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Read(buf)
	if ne := net.Error(nil); err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("read after the revocation: %v, want the connection closed within a second", err)
	}

	c2, err := peer.Dial(raft.ServerAddress(server.Addr().String()), 2*time.Second)
	if err == nil {
		defer c2.Close()
		_ = c2.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c2.Write([]byte("ping")); err == nil {
			if _, err := io.ReadFull(c2, buf); err == nil {
				t.Fatal("a revoked peer's new connection is served")
			}
		}
	}
}

// TestWorkerIsRefused: a worker certificate of the cluster does not get a
// Raft connection, whichever side dials.
func TestWorkerIsRefused(t *testing.T) {
	ca := pkitest.NewTestCA(t)
	gate := &revocable{revoked: map[string]bool{}}
	server := newStream(t, ca.Credentials("m1", pki.RoleManager), gate.admit)
	serveEcho(server)
	worker := ca.Credentials("w1", pki.RoleWorker)
	d := newStream(t, worker, func(authz.Caller) error { return nil })
	c, err := d.Dial(raft.ServerAddress(server.Addr().String()), 2*time.Second)
	if err != nil {
		return // refused at the handshake: fine
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4)
	if _, err := c.Write([]byte("ping")); err == nil {
		if _, err := io.ReadFull(c, buf); err == nil {
			t.Fatal("a worker's connection is served")
		}
	}
}
