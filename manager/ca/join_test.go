package ca_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/ca"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/join"
	"github.com/shoal-sched/shoal/raftstore"
)

func joinOpts(h *caHarness, token, role string) join.Options {
	return join.Options{Dir: h.t.TempDir(), Managers: []string{h.addr}, Token: token, Role: role, Timeout: 10 * time.Second}
}

func TestJoinWorkerAndManager(t *testing.T) {
	h := newCAHarness(t, nil, api.ClusterSettings{})
	worker, manager := h.tokens()
	for _, tc := range []struct{ token, role string }{{worker, pki.RoleWorker}, {manager, pki.RoleManager}} {
		t.Run(tc.role, func(t *testing.T) {
			o := joinOpts(h, tc.token, tc.role)
			creds, err := join.Obtain(context.Background(), o)
			if err != nil {
				t.Fatalf("join: %v", err)
			}
			id := creds.Identity()
			if id.Role != tc.role || id.ClusterID != "cluster-test" || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id.NodeID) {
				t.Fatalf("identity %v", id)
			}
			if life := time.Until(creds.Leaf().NotAfter); life < api.DefaultCertExpiry-time.Minute || life > api.DefaultCertExpiry {
				t.Errorf("certificate life %s, want the default %s", life, api.DefaultCertExpiry)
			}
			st, err := os.Stat(filepath.Join(o.Dir, pki.KeyFile))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v, mode %v", err, st.Mode())
			}
			// A restart reads the same identity back, without a token.
			o.Token = ""
			again, err := join.Obtain(context.Background(), o)
			if err != nil || again.Identity() != id {
				t.Fatalf("restart: %v, %v; want %v", again.Identity(), err, id)
			}
		})
	}
	if n := h.issues.Load(); n != 2 {
		t.Errorf("%d issue calls, want 2 (a restart asks for nothing)", n)
	}
}

// TestJoinWrongDigestSendsNoSecret: a token whose digest is not the root
// the manager shows stops the join before the token leaves the node: no
// issue call arrives at the manager.
func TestJoinWrongDigestSendsNoSecret(t *testing.T) {
	h := newCAHarness(t, nil, api.ClusterSettings{})
	other, _ := pki.NewRootCA("other", time.Now())
	worker, _ := h.tokens()
	tok, _ := pki.ParseToken(worker)
	tok.Digest = other.Digest()
	_, err := join.Obtain(context.Background(), joinOpts(h, tok.String(), pki.RoleWorker))
	if !errors.Is(err, pki.ErrWrongDigest) || !strings.Contains(err.Error(), "not sent") {
		t.Fatalf("err = %v, want a digest mismatch", err)
	}
	if n := h.issues.Load(); n != 0 {
		t.Fatalf("%d issue calls reached the manager; the secret left the node", n)
	}
}

func TestJoinRefusals(t *testing.T) {
	h := newCAHarness(t, nil, api.ClusterSettings{})
	worker, manager := h.tokens()
	rec := h.record()
	// A node that joined with the worker token before it was rotated.
	early, err := join.Obtain(context.Background(), joinOpts(h, worker, pki.RoleWorker))
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := ca.RotateToken(rec, pki.RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	h.apply(raftstore.SetCA{CA: rotated, ExpectedVersion: rec.Version})
	newWorker, _ := h.tokens()
	forged, _ := pki.ParseToken(worker)
	forged.Secret = strings.Repeat("a", len(forged.Secret))

	cases := []struct {
		name, token, role, want string
	}{
		{"rotated token", worker, pki.RoleWorker, "rotated"},
		{"worker token for a manager", newWorker, pki.RoleManager, "this is a worker token and a manager cannot join with it"},
		{"manager token for a worker", manager, pki.RoleWorker, "this is a manager token and a worker cannot join with it"},
		{"unknown secret", forged.String(), pki.RoleWorker, "not one of this cluster's join tokens"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := join.Obtain(context.Background(), joinOpts(h, tc.token, tc.role))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := join.Obtain(context.Background(), joinOpts(h, "SHLTKN-1-nope", pki.RoleWorker)); !errors.Is(err, pki.ErrInvalidToken) {
		t.Errorf("malformed token: %v", err)
	}
	// The new token works, and the node that joined with the old one
	// still renews.
	if _, err := join.Obtain(context.Background(), joinOpts(h, newWorker, pki.RoleWorker)); err != nil {
		t.Fatalf("join with the new token: %v", err)
	}
	r := &pki.Renewer{Creds: early, Issuer: &join.Remote{Creds: early, Managers: func() []string { return []string{h.addr} }}}
	before := early.Leaf().SerialNumber
	if err := r.RenewNow(context.Background()); err != nil {
		t.Fatalf("a node that joined with the rotated token cannot renew: %v", err)
	}
	if early.Leaf().SerialNumber.Cmp(before) == 0 {
		t.Fatal("renewal did not swap the certificate")
	}
}

// TestRenewRefusesInvalidCertificates: an expired or not-yet-valid
// certificate, or one of another CA, is refused at the handshake, with an
// error that names the case.
func TestRenewRefusesInvalidCertificates(t *testing.T) {
	h := newCAHarness(t, nil, api.ClusterSettings{})
	now := time.Now()
	otherRoot, _ := pki.NewRootCA("cluster-test", now)
	keyPEM, csr, _ := pki.NewKeyAndCSR()
	otherCert, _ := otherRoot.Issue(csr, pki.Identity{NodeID: "x", Role: pki.RoleWorker, ClusterID: "cluster-test"}, now, time.Hour)
	// It trusts the real root, so only the server's refusal stops it.
	otherCreds, err := pki.NewCredentials(otherCert, keyPEM, append(h.root.CertPEM(), otherRoot.CertPEM()...))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		creds     *pki.Credentials
		localWant error
		want      error
	}{
		{"expired", h.issueCreds(pki.Identity{NodeID: "n1", Role: pki.RoleWorker}, now.Add(-72*time.Hour), 2*time.Hour), pki.ErrExpired, pki.ErrExpired},
		{"not yet valid", h.issueCreds(pki.Identity{NodeID: "n2", Role: pki.RoleWorker}, now.Add(72*time.Hour), 2*time.Hour), pki.ErrNotYetValid, pki.ErrExpired},
		{"another CA", otherCreds, nil, pki.ErrWrongCA},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The node itself names the case before it dials.
			r := &pki.Renewer{Creds: tc.creds, Issuer: &join.Remote{Creds: tc.creds, Managers: func() []string { return []string{h.addr} }}}
			err := r.RenewNow(context.Background())
			if tc.localWant == nil {
				// Nothing local stops it: the manager's handshake does. Its
				// alert is named when it arrives before the connection
				// closes; either way the call fails.
				if err == nil || !errors.Is(err, tc.want) && !strings.Contains(err.Error(), "Unavailable") {
					t.Fatalf("err = %v, want %v or a closed connection", err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.localWant) {
				t.Fatalf("local check: err = %v, want %v", err, tc.localWant)
			}
			// A node whose clock lets its certificate pass is refused by
			// the manager's handshake (its alert, when it arrives before
			// the connection closes, is named too).
			tc.creds.SetClock(func() time.Time { return tc.creds.Leaf().NotBefore.Add(time.Minute) })
			err = r.RenewNow(context.Background())
			if err == nil {
				t.Fatal("the manager renewed it")
			}
			if !errors.Is(err, tc.want) && !strings.Contains(err.Error(), "Unavailable") {
				t.Fatalf("err = %v, want %v or a closed connection", err, tc.want)
			}
		})
	}
	if n := h.renews.Load(); n != 0 {
		t.Fatalf("%d renew calls reached the handler", n)
	}
}

func TestJoinClockFarOff(t *testing.T) {
	h := newCAHarness(t, func() time.Time { return time.Now().Add(3 * time.Hour) }, api.ClusterSettings{})
	worker, _ := h.tokens()
	_, err := join.Obtain(context.Background(), joinOpts(h, worker, pki.RoleWorker))
	if !errors.Is(err, pki.ErrClockSkew) || !strings.Contains(err.Error(), "behind") {
		t.Fatalf("err = %v, want a clock far behind", err)
	}
}
