// Package vagrant_test checks the part of the Vagrant layout that can run
// without a hypervisor: the Vagrantfile's hand-off of join tokens and an
// operator certificate from the bootstrap manager, against a real
// shoal-manager on loopback.
package vagrant_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/internal/poll"
)

func TestHandoffFetchesTokensAndOperatorCertificate(t *testing.T) {
	if _, err := exec.LookPath("ruby"); err != nil {
		t.Fatal("the Vagrantfile's hand-off is Ruby: run make deps (it installs ruby)")
	}
	bin := buildBinaries(t)
	dataDir := t.TempDir()
	addr, raftAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	startManager(t, filepath.Join(bin, "shoal-manager"), dataDir, addr, raftAddr)
	socket := filepath.Join(dataDir, "control.sock")
	poll.Until(t, 30*time.Second, func() error { _, err := os.Stat(socket); return err })

	out := filepath.Join(t.TempDir(), "cluster")
	ruby := exec.Command("ruby", "testdata/handoff.rb")
	ruby.Env = append(os.Environ(),
		"PATH="+bin+":"+os.Getenv("PATH"),
		"SHOAL_TEST_VAGRANTFILE=Vagrantfile", "SHOAL_TEST_SOCKET="+socket, "SHOAL_TEST_OUT="+out)
	if b, err := ruby.CombinedOutput(); err != nil {
		t.Fatalf("hand-off: %v\n%s", err, b)
	}

	tokens := map[string]string{}
	for _, name := range []string{"manager-token", "worker-token", "operator/ca.pem", "operator/cert.pem", "operator/key.pem"} {
		path := filepath.Join(out, name)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("the hand-off did not write %s: %v", name, err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %o, want 0600 (it is a secret)", name, mode)
		}
		b, _ := os.ReadFile(path)
		tokens[name] = strings.TrimSpace(string(b))
	}
	for _, kind := range []string{"manager-token", "worker-token"} {
		if !strings.HasPrefix(tokens[kind], "SHLTKN-1-") || strings.Contains(tokens[kind], "\n") {
			t.Errorf("%s = %q, want one SHLTKN-1-… token", kind, tokens[kind])
		}
	}
	if tokens["manager-token"] == tokens["worker-token"] {
		t.Error("the manager and worker tokens are the same")
	}

	ctl := filepath.Join(bin, "shoalctl")
	withCert := exec.Command(ctl, "--host", addr, "cluster", "status")
	withCert.Env = append(os.Environ(), "SHOAL_CERT_PATH="+filepath.Join(out, "operator"))
	if b, err := withCert.CombinedOutput(); err != nil || !bytes.Contains(b, []byte("Leader:")) {
		t.Errorf("shoalctl over TCP with the handed-out operator certificate: %v\n%s", err, b)
	}
	without := exec.Command(ctl, "--host", addr, "cluster", "status")
	without.Env = append(os.Environ(), "SHOAL_CERT_PATH=")
	if b, err := without.CombinedOutput(); err == nil {
		t.Errorf("shoalctl over TCP without a certificate was answered:\n%s", b)
	}
}

// buildBinaries builds shoal-manager and shoalctl into a temp dir.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "../../cmd/manager", "../../cmd/ctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for from, to := range map[string]string{"manager": "shoal-manager", "ctl": "shoalctl"} {
		if err := os.Rename(filepath.Join(dir, from), filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startManager runs a one-manager cluster (no gossip) until the test ends.
func startManager(t *testing.T, bin, dataDir, addr, raftAddr string) {
	t.Helper()
	var log bytes.Buffer
	cmd := exec.Command(bin, "--data-dir", dataDir, "--addr", addr, "--raft-addr", raftAddr)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("shoal-manager log:\n%s", log.String())
		}
	})
}

// freeLoopbackAddr returns a loopback TCP address that was free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
