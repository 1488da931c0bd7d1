package ctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/internal/seal"
	"github.com/shoal-sched/shoal/manager/managertest"
)

// TestE2EAutolock drives autolock with shoalctl against a real manager:
// turn it on, restart, unlock through the control socket, rotate.
func TestE2EAutolock(t *testing.T) {
	e := startE2E(t, 0)
	out := e.mustRun("cluster", "update", "--autolock=true")
	if !strings.Contains(out, "autolock is on") || !strings.Contains(out, "SHLKEY-1-") {
		t.Fatalf("cluster update --autolock=true said:\n%s", out)
	}
	key := strings.TrimSpace(e.mustRun("cluster", "unlock-key", "-q"))
	if !strings.HasPrefix(key, "SHLKEY-1-") || !strings.Contains(out, key) {
		t.Fatalf("unlock-key -q = %q; want the key update printed", key)
	}
	if st := e.mustRun("cluster", "status"); !strings.Contains(st, "Autolock:") || !strings.Contains(st, "on") {
		t.Fatalf("cluster status does not show autolock on:\n%s", st)
	}
	keyFile := filepath.Join(t.TempDir(), "unlock-key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Every manager wraps its data key once it applied the change.
	managertest.WaitFor(t, 20*time.Second, func() error {
		st, err := seal.LoadKey(e.cluster.DataDir(0), nil)
		if err != nil {
			return err
		}
		if !st.Locked {
			return errString("the data key is not wrapped yet")
		}
		return nil
	})
	e.cluster.Stop(0)
	e.cluster.Restart(0)
	managertest.WaitFor(t, 20*time.Second, func() error {
		r := e.run("service", "ls")
		if r.code != 0 && strings.Contains(r.stderr, "locked: run shoalctl cluster unlock") {
			return nil
		}
		return errString("not locked yet: " + r.stderr + r.stdout)
	})
	sock := "unix://" + filepath.Join(e.cluster.DataDir(0), "control.sock")
	e.host = sock
	e.mustRun("cluster", "unlock", "--key-file", keyFile)
	e.cluster.WaitLeader(20 * time.Second)
	e.host = e.cluster.Addr(0)
	managertest.WaitFor(t, 20*time.Second, func() error {
		if r := e.run("service", "ls"); r.code != 0 {
			return errString(r.stderr)
		}
		return nil
	})
	rotated := strings.TrimSpace(e.mustRun("cluster", "unlock-key", "--rotate", "-q"))
	if rotated == key || !strings.HasPrefix(rotated, "SHLKEY-1-") {
		t.Fatalf("rotate gave %q", rotated)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
