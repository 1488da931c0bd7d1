package containerd

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/api"
)

// filesHolding lists the regular files under root that contain needle.
func filesHolding(t *testing.T, root string, needle []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil // a file of the running daemon came and went
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if bytes.Contains(b, needle) {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return found
}

// TestSecretFiles runs a container that reads its secret and its config:
// each has the owner and mode asked for, cannot be written, and its data is
// in no file of the runtime's state dir or of containerd's; Remove takes
// the tmpfs away.
func TestSecretFiles(t *testing.T) {
	e := newEnv(t)
	opts := e.opts
	opts.SecretsRoot = t.TempDir()
	rt := (&env{opts: opts}).newRuntime(t)
	const value = "pg-pass-4b9e1d"
	task := e.task(t, "sh", "-c", `stat -c '%u %g %a' /run/secrets/db_password /etc/app.conf; md5sum /run/secrets/db_password; cat /etc/app.conf; echo
if echo x > /run/secrets/db_password; then echo writable; else echo read-only; fi`)
	files := []api.SecretFile{
		{Path: "/run/secrets/db_password", UID: 999, GID: 998, Mode: 0o440, Data: []byte(value)},
		{Path: "/etc/app.conf", Mode: 0o444, Data: []byte("level=debug")},
	}
	t.Cleanup(func() {
		if err := rt.Remove(context.WithoutCancel(t.Context()), task.ID); err != nil {
			t.Errorf("remove: %v", err)
		}
	})
	if err := rt.Create(t.Context(), task, agent.WithSecrets(files)); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := rt.Start(t.Context(), task.ID); err != nil {
		t.Fatalf("start: %v", err)
	}
	e.rt = rt
	if st := e.wait(t, task.ID); st.Code != 0 {
		t.Fatalf("exit %d; logs %q", st.Code, e.logsOf(t, task.ID))
	}
	got := e.logsOf(t, task.ID)
	for _, want := range []string{"stdout: 999 998 440", "stdout: 0 0 444", "stdout: " + fmt.Sprintf("%x", md5.Sum([]byte(value))) + "  /run/secrets/db_password", "stdout: level=debug", "stdout: read-only"} {
		if !slices.Contains(got, want) {
			t.Errorf("logs %q: no line %q", got, want)
		}
	}
	// The container printed only a digest: the value itself must be in no
	// file of the runtime (logs, state) or of containerd (specs, snapshots).
	for _, root := range []string{opts.StateDir, e.daemon.Dir} {
		for _, p := range filesHolding(t, root, []byte(value)) {
			t.Errorf("the secret's data is in %s", p)
		}
	}
	dir := rt.secretsDir(task.ID)
	if err := rt.Remove(t.Context(), task.ID); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("secrets dir %s after remove: %v, want it gone", dir, err)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), dir) {
		t.Errorf("the tmpfs %s is still mounted after remove", dir)
	}
}
