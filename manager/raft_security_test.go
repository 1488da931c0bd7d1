package manager_test

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/pki"
)

// dialStream is a raft.StreamLayer that only dials, with dial.
type dialStream struct {
	ln   net.Listener
	dial func(addr string, timeout time.Duration) (net.Conn, error)
}

func (s *dialStream) Accept() (net.Conn, error) { return s.ln.Accept() }
func (s *dialStream) Close() error              { return s.ln.Close() }
func (s *dialStream) Addr() net.Addr            { return s.ln.Addr() }
func (s *dialStream) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.dial(string(a), timeout)
}

func tlsDial(cfg *tls.Config) func(string, time.Duration) (net.Conn, error) {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: cfg}
		return d.Dial("tcp", addr)
	}
}

// appendEntries sends one (stale) AppendEntries to addr as member id over
// dial and returns the RPC's error: a peer that is admitted gets an answer
// (a refusal of the stale term), one that is not gets none.
func appendEntries(t *testing.T, addr, id string, dial func(string, time.Duration) (net.Conn, error)) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trans := raft.NewNetworkTransport(&dialStream{ln: ln, dial: dial}, 1, 2*time.Second, io.Discard)
	defer trans.Close()
	var resp raft.AppendEntriesResponse
	return trans.AppendEntries(raft.ServerID(id), raft.ServerAddress(addr), &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id), Addr: []byte(ln.Addr().String())},
	}, &resp)
}

// TestRaftRefusesAllButMembers speaks Raft to the leader as every kind of
// peer: only a manager certificate of a member of the Raft configuration
// gets an answer.
func TestRaftRefusesAllButMembers(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	leader := c.WaitLeader(10 * time.Second)
	addr := c.Manager(leader).RaftAddr()
	member := c.Manager((leader + 1) % 3).Credentials()
	outsider := c.Credentials(pki.RoleManager)
	worker := c.Credentials(pki.RoleWorker)
	plain := func(a string, timeout time.Duration) (net.Conn, error) { return net.DialTimeout("tcp", a, timeout) }
	for _, tc := range []struct {
		name  string
		id    string
		dial  func(string, time.Duration) (net.Conn, error)
		admit bool
	}{
		{"plaintext", member.Identity().NodeID, plain, false},
		{"no certificate", member.Identity().NodeID, tlsDial(noCertTLS(member)), false},
		{"another CA", "intruder", tlsDial(foreignTLS(t, pki.RoleManager)), false},
		{"worker of the cluster", worker.Identity().NodeID, tlsDial(worker.ClientTLS()), false},
		{"manager not in the configuration", outsider.Identity().NodeID, tlsDial(outsider.ClientTLS()), false},
		{"member", member.Identity().NodeID, tlsDial(member.ClientTLS()), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := appendEntries(t, addr, tc.id, tc.dial)
			switch {
			case tc.admit && err != nil:
				t.Fatalf("a member's AppendEntries: %v, want an answer", err)
			case !tc.admit && err == nil:
				t.Fatal("AppendEntries answered, want the connection refused")
			}
		})
	}
}
