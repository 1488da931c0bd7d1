package manager_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// TestClusterCA: the first manager makes the cluster's CA and commits it;
// a manager that joins with the manager token gets a certificate whose
// node ID is its Raft id; both trust the same root; a restart keeps the
// identity.
func TestClusterCA(t *testing.T) {
	c := managertest.StartCluster(t, 2, managertest.Options{NoGossip: true})
	st, err := c.SocketClient(0).ClusterStatus(t.Context(), &shoalpb.ClusterStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var root []byte
	for i := range 2 {
		m := c.Manager(i)
		id := m.Credentials().Identity()
		if id.NodeID != m.ID() || id.Role != pki.RoleManager || id.ClusterID != st.GetClusterId() {
			t.Fatalf("manager %d: identity %v, raft id %s, cluster %s", i, id, m.ID(), st.GetClusterId())
		}
		if i == 0 {
			root = m.Credentials().RootsPEM()
		} else if string(m.Credentials().RootsPEM()) != string(root) {
			t.Fatalf("manager %d trusts another root", i)
		}
	}
	c.WaitFor(waitTimeout, func() error {
		if _, err := os.Stat(filepath.Join(c.DataDir(0), "ca-bootstrap.json")); !errors.Is(err, os.ErrNotExist) {
			return errors.New("the bootstrap CA file is still there after the commit")
		}
		return nil
	})
	toks, err := c.SocketClient(1).GetJoinTokens(t.Context(), &shoalpb.GetJoinTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if toks.GetManager() != c.JoinToken(pki.RoleManager) || toks.GetWorker() == toks.GetManager() || len(toks.GetManagerAddrs()) != 2 {
		t.Fatalf("tokens %v", toks)
	}
	id := c.Manager(1).ID()
	c.Stop(1)
	c.Restart(1)
	if got := c.Manager(1).ID(); got != id {
		t.Fatalf("restarted as %s, was %s", got, id)
	}
	c.WaitFor(waitTimeout, func() error {
		_, err := c.SocketClient(1).GetJoinTokens(t.Context(), &shoalpb.GetJoinTokensRequest{})
		return err
	})
}

// TestManagerJoinRefusals: a manager cannot join with the worker token or
// with a rotated manager token; the message says which.
func TestManagerJoinRefusals(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{NoGossip: true})
	old := c.JoinToken(pki.RoleManager)
	worker := c.JoinToken(pki.RoleWorker)
	if _, err := c.SocketClient(0).RotateJoinToken(t.Context(), &shoalpb.RotateJoinTokenRequest{Role: pki.RoleManager}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, token, want string }{
		{"worker token", worker, "this is a worker token"},
		{"rotated token", old, "rotated"},
		{"no token", "", "--token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := manager.Open(t.Context(), manager.Config{
				DataDir: t.TempDir(), Addr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", Socket: "-",
				Join: c.AdvertiseAddr(0), Token: tc.token, JoinTimeout: 10 * time.Second,
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := c.SocketClient(0).RotateJoinToken(t.Context(), &shoalpb.RotateJoinTokenRequest{Role: "root"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("rotate role root: %v", err)
	}
}

// TestCertExpirySetting: the cluster setting is checked on the server and
// sets the life of the certificates issued next.
func TestCertExpirySetting(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{NoGossip: true})
	ctl := c.SocketClient(0)
	_, err := ctl.UpdateCluster(t.Context(), &shoalpb.UpdateClusterRequest{CertExpiry: durationpb.New(30 * time.Minute)})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "cert_expiry") || !strings.Contains(err.Error(), "1h0m0s") {
		t.Fatalf("30m: %v", err)
	}
	resp, err := ctl.UpdateCluster(t.Context(), &shoalpb.UpdateClusterRequest{CertExpiry: durationpb.New(720 * time.Hour)})
	if err != nil || resp.GetSettings().GetCertExpiry().AsDuration() != 720*time.Hour {
		t.Fatalf("720h: %v, %v", resp, err)
	}
	added := c.AddManager(0)
	life := time.Until(c.Manager(added).Credentials().Leaf().NotAfter)
	if life < 719*time.Hour || life > 720*time.Hour {
		t.Fatalf("a manager joined after the change got a certificate for %s, want 720h", life)
	}
}
