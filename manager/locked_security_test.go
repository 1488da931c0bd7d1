package manager_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// lockedManager starts a one-manager cluster, turns autolock on and
// restarts the manager, which is then locked. It returns the unlock key
// and an operator's and a worker's credentials (issued before the
// restart: the harness reads the CA from Raft).
func lockedManager(t *testing.T) (c *managertest.Cluster, key string, op, worker *pki.Credentials) {
	t.Helper()
	c = managertest.StartCluster(t, 1, managertest.Options{NoGossip: true})
	on := true
	resp, err := c.Client(0).UpdateCluster(t.Context(), &shoalpb.UpdateClusterRequest{Autolock: &on})
	if err != nil {
		t.Fatalf("turn autolock on: %v", err)
	}
	op, worker = c.Credentials(pki.RoleOperator), c.Credentials(pki.RoleWorker)
	c.WaitFor(waitTimeout, func() error {
		if !keyFileLocked(t, c.DataDir(0)) {
			return errors.New("the data key is not wrapped yet")
		}
		return nil
	})
	c.Stop(0)
	c.Restart(0)
	waitLocked(t, c, 0)
	return c, resp.GetUnlockKey(), op, worker
}

// TestLockedManagerKeepsTLSAndTheGuard: a locked manager's TCP listener
// speaks TLS with its certificate and applies the authorisation table
// before the lock's own refusal, as the unlocked manager does; the unlock
// is refused over TCP even to an operator with the right key.
func TestLockedManagerKeepsTLSAndTheGuard(t *testing.T) {
	c, key, op, workerCreds := lockedManager(t)
	callers := []caller{
		{"plaintext", c.DialOptions(nil), codes.Unavailable, ""},
		{"no certificate", authz.DialOptions(noCertTLS(op)), codes.Unauthenticated, "no client certificate"},
		{"another CA", authz.DialOptions(foreignTLS(t, pki.RoleOperator)), codes.Unavailable, ""},
		{"worker", c.DialOptions(workerCreds), codes.PermissionDenied, "as role worker"},
		{"operator", c.DialOptions(op), codes.FailedPrecondition, "locked: run shoalctl cluster unlock"},
	}
	for _, cl := range callers {
		t.Run(cl.name, func(t *testing.T) {
			ctl := shoalpb.NewControlClient(dial(t, c.Addr(0), cl.opts))
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err := ctl.ListServices(ctx, &shoalpb.ListServicesRequest{})
			checkCode(t, err, cl.code, cl.text)
		})
	}
	worker := shoalpb.NewControlClient(dial(t, c.Addr(0), c.DialOptions(workerCreds)))
	_, err := worker.UnlockCluster(t.Context(), &shoalpb.UnlockClusterRequest{UnlockKey: key})
	checkCode(t, err, codes.PermissionDenied, "as role worker")
	_, err = c.Client(0).UnlockCluster(t.Context(), &shoalpb.UnlockClusterRequest{UnlockKey: key})
	checkCode(t, err, codes.PermissionDenied, "control socket")
	if !keyFileLocked(t, c.DataDir(0)) {
		t.Fatal("the data key was unwrapped by a refused unlock")
	}
	_, err = c.Client(0).ListServices(t.Context(), &shoalpb.ListServicesRequest{})
	checkCode(t, err, codes.FailedPrecondition, "locked")
	// Agents' calls (services the locked server does not register) pass
	// the guard too and get the lock's refusal, readable over TLS.
	_, err = shoalpb.NewNodeCAClient(dial(t, c.Addr(0), c.DialOptions(workerCreds))).
		RenewNodeCertificate(t.Context(), &shoalpb.RenewNodeCertificateRequest{})
	checkCode(t, err, codes.FailedPrecondition, "locked")
	if err := unlock(t, c, 0, key); err != nil {
		t.Fatalf("unlock through the socket: %v", err)
	}
	c.WaitLeader(waitTimeout)
}
