package ctl

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/pkitest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// TestJoinTokenAndOperatorCert drives a real manager: join-token prints
// the command line and the token, --rotate replaces it, operator-cert
// writes a certificate that --tls-dir then uses over mutual TLS, and a
// directory of another CA is refused.
func TestJoinTokenAndOperatorCert(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{NoGossip: true})
	sock := "unix://" + c.Manager(0).Socket()
	worker := c.JoinToken(pki.RoleWorker)

	out := mustRun(t, sock, "cluster", "join-token", "worker")
	if want := "shoal-agent --token " + worker + " --join " + c.AdvertiseAddr(0); !strings.Contains(out, want) {
		t.Fatalf("join-token worker:\n%s\nwant %q", out, want)
	}
	if out := mustRun(t, sock, "cluster", "join-token", "manager"); !strings.Contains(out, "shoal-manager --token "+c.JoinToken(pki.RoleManager)) {
		t.Fatalf("join-token manager:\n%s", out)
	}
	if out := mustRun(t, sock, "cluster", "join-token", "-q", "worker"); out != worker+"\n" {
		t.Fatalf("join-token -q: %q", out)
	}
	rotated := mustRun(t, sock, "cluster", "join-token", "--rotate", "worker")
	if !strings.Contains(rotated, "Rotated the worker join token") || strings.Contains(rotated, worker) {
		t.Fatalf("rotate:\n%s", rotated)
	}
	mustFail(t, sock, []string{"cluster", "join-token", "root"}, `ROLE "root"`, "want worker or manager")

	dir := filepath.Join(t.TempDir(), "certs")
	if out := mustRun(t, sock, "cluster", "operator-cert", "--out", dir, "--name", "alice"); !strings.Contains(out, "SHOAL_CERT_PATH="+dir) {
		t.Fatalf("operator-cert: %s", out)
	}
	st, err := os.Stat(filepath.Join(dir, pki.KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key: %v %v", err, st)
	}
	creds, err := pki.LoadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	if id := creds.Identity(); id.Role != pki.RoleOperator || id.NodeID != "alice" || id.ClusterID != c.Manager(0).Credentials().Identity().ClusterID {
		t.Fatalf("operator identity %v", id)
	}
	// Over TCP with the operator certificate (as from a laptop).
	if out := mustRun(t, c.Addr(0), "--tls-dir", dir, "cluster", "status"); !strings.Contains(out, c.Manager(0).ID()) {
		t.Fatalf("status over mutual TLS:\n%s", out)
	}
	// A directory of another cluster's CA: the manager is not one of its
	// cluster's, and shoalctl says so.
	other := pkitest.NewTestCA(t)
	otherDir := t.TempDir()
	other.WriteDir(otherDir, "mallory", pki.RoleOperator)
	mustFail(t, c.Addr(0), []string{"--tls-dir", otherDir, "cluster", "status"}, "another CA")
	mustFail(t, c.Addr(0), []string{"--tls-dir", t.TempDir(), "cluster", "status"}, "--tls-dir", "operator-cert")
}

// TestRootRotationE2E: shoalctl cluster ca --rotate on a real cluster of
// two managers follows the rotation to its end; the root and the tokens
// change and every manager trusts the new root alone.
func TestRootRotationE2E(t *testing.T) {
	c := managertest.StartCluster(t, 2, managertest.Options{NoGossip: true, Edit: func(cfg *manager.Config) {
		cfg.CertStatusInterval = 100 * time.Millisecond
	}})
	sock := "unix://" + c.Manager(0).Socket()
	before := mustRun(t, sock, "cluster", "ca")
	oldWorker := c.JoinToken(pki.RoleWorker)
	var out, errOut strings.Builder
	app := &App{Out: &out, Err: &errOut, Now: time.Now, Getenv: func(string) string { return "" }}
	if code := Execute(t.Context(), app, []string{"--host", sock, "--timeout", "60s", "cluster", "ca", "--rotate"}); code != 0 {
		t.Fatalf("cluster ca --rotate: exit %d\n%s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "of 2 nodes and managers renewed") || !strings.Contains(errOut.String(), "rotation done") {
		t.Fatalf("progress:\n%s", errOut.String())
	}
	if out.String() == before || strings.Contains(out.String(), "Rotating") {
		t.Fatalf("after the rotation:\n%s\nbefore:\n%s", out.String(), before)
	}
	newDigest := strings.TrimSpace(strings.TrimPrefix(strings.Split(out.String(), "\n")[0], "Root CA digest:"))
	if tok := mustRun(t, sock, "cluster", "join-token", "-q", "worker"); tok == oldWorker+"\n" || !strings.Contains(tok, newDigest) {
		t.Fatalf("worker token after the rotation %q (digest %s), was %q", tok, newDigest, oldWorker)
	}
	c.WaitFor(30*time.Second, func() error {
		for i := range 2 {
			roots, err := pki.ParseCertsPEM(c.Manager(i).Credentials().RootsPEM())
			if err != nil {
				return err
			}
			if len(roots) != 1 || pki.DigestOf(roots[0]) != newDigest {
				return fmt.Errorf("manager %d trusts %d roots, not the new one alone", i, len(roots))
			}
		}
		return nil
	})
}

// TestRootRotationUnderChurn: two agents and a manager move to a new root
// while a service is scaled up and down; the rotation ends (the leader saw
// every node hold a new-root certificate), no node ever leaves ready, and
// the service converges afterwards.
func TestRootRotationUnderChurn(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{Edit: func(cfg *manager.Config) {
		cfg.CertStatusInterval = 100 * time.Millisecond
	}})
	e := &e2e{t: t, cluster: c, host: c.Addr(0), certDir: t.TempDir(), certStatus: 100 * time.Millisecond}
	for i := range 2 {
		e.startAgent(fmt.Sprintf("worker-%d", i+1))
	}
	ctl := c.Client(0)
	nodesReady := func() error {
		resp, err := ctl.ListNodes(t.Context(), &shoalpb.ListNodesRequest{})
		if err != nil {
			return err
		}
		if len(resp.GetNodes()) != 2 {
			return fmt.Errorf("%d nodes", len(resp.GetNodes()))
		}
		for _, n := range resp.GetNodes() {
			if n.GetNode().GetStatus() != string(api.NodeReady) {
				return fmt.Errorf("node %s is %s", n.GetNode().GetHostname(), n.GetNode().GetStatus())
			}
		}
		return nil
	}
	c.WaitFor(30*time.Second, nodesReady)
	if _, err := ctl.CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
		Name: "churn", Image: "busybox", Mode: "replicated", Replicas: 2,
	}}); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	churned := make(chan error, 1)
	go func() {
		// Scale between 2 and 6 until the rotation ends (at most 300 steps),
		// and check at every step that both nodes are still ready.
		var bad error
		for i := 0; i < 300; i++ {
			select {
			case <-stop:
				churned <- bad
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := ctl.ScaleService(t.Context(), &shoalpb.ScaleServiceRequest{Service: "churn", Replicas: uint64(2 + 4*(i%2))}); err != nil && bad == nil {
				bad = fmt.Errorf("scale during the rotation: %w", err)
			}
			if err := nodesReady(); err != nil && bad == nil {
				bad = fmt.Errorf("during the rotation: %w", err)
			}
		}
		churned <- bad
	}()
	var out, errOut strings.Builder
	app := &App{Out: &out, Err: &errOut, Now: time.Now, Getenv: func(string) string { return "" }}
	code := Execute(t.Context(), app, []string{"--host", "unix://" + c.Manager(0).Socket(), "--timeout", "60s", "cluster", "ca", "--rotate"})
	close(stop)
	if code != 0 {
		t.Fatalf("cluster ca --rotate: exit %d\n%s", code, errOut.String())
	}
	if err := <-churned; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "of 3 nodes and managers renewed") {
		t.Fatalf("progress did not count the manager and both agents:\n%s", errOut.String())
	}
	if _, err := ctl.ScaleService(t.Context(), &shoalpb.ScaleServiceRequest{Service: "churn", Replicas: 4}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(30*time.Second, func() error {
		resp, err := ctl.ListTasks(t.Context(), &shoalpb.ListTasksRequest{Service: "churn"})
		if err != nil {
			return err
		}
		running := 0
		for _, tk := range resp.GetTasks() {
			if tk.GetStatus().GetState() == "running" && tk.GetDesiredState() == "running" {
				running++
			}
		}
		if running != 4 {
			return fmt.Errorf("%d of 4 replicas running after the rotation", running)
		}
		return nodesReady()
	})
}
