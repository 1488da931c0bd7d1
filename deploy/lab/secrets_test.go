package lab

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testSecrets checks a secret end to end on real hosts: the container
// reads it at /run/secrets/<name> with the uid/gid/mode asked for, and the
// value is on no disk of any host (an agent keeps it on a tmpfs only) and
// in no inspect, logs or events output.
func testSecrets(ctx context.Context, t *testing.T, l *Lab) {
	value := fmt.Sprintf("lab-secret-%d", time.Now().UnixNano())
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	// events streams from now on: started first, it sees every change
	// the secret and its service make.
	evCtx, stopEvents := context.WithCancel(ctx)
	var events strings.Builder
	evDone := make(chan struct{})
	go func() { defer close(evDone); _ = l.Ctl(evCtx, &events, "events") }()
	t.Cleanup(func() { stopEvents(); <-evDone })
	var out strings.Builder
	if err := l.Ctl(ctx, &out, "secret", "create", "db_password", file); err != nil {
		t.Fatalf("secret create: %v\n%s", err, out.String())
	}
	t.Cleanup(func() { _ = l.Ctl(ctx, io.Discard, "secret", "rm", "db_password") })
	// The container prints the file's owner and mode and a digest of its
	// content, never the content, so that logs stay clean.
	// It also reads the value the way images of the *_FILE pattern do
	// (POSTGRES_PASSWORD_FILE and the like): through a variable naming
	// the file.
	script := "stat -c '%u:%g:%a' /run/secrets/db_password; echo \"via-env $(md5sum < \"$DB_PASSWORD_FILE\")\"; sleep 3600"
	if err := l.Ctl(ctx, &out, "service", "create", "--name", "sec", "--reserve-memory", "16M",
		"--env", "DB_PASSWORD_FILE=/run/secrets/db_password",
		"--secret", "source=db_password,uid=70,gid=71,mode=0440", l.Image(), "sh", "-c", script); err != nil {
		t.Fatalf("service create: %v\n%s", err, out.String())
	}
	t.Cleanup(func() { _ = l.Ctl(ctx, io.Discard, "service", "rm", "sec") })
	var logs strings.Builder
	err := waitFor(ctx, 30*time.Second, func() error {
		logs.Reset()
		if err := l.Ctl(ctx, &logs, "service", "logs", "--raw", "sec"); err != nil {
			return err
		}
		if !strings.Contains(logs.String(), "70:71:440") {
			return &missingLine{want: "70:71:440", logs: logs.String()}
		}
		if viaEnv := fmt.Sprintf("via-env %x", md5.Sum([]byte(value))); !strings.Contains(logs.String(), viaEnv) {
			return &missingLine{want: viaEnv, logs: logs.String()}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"secret", "inspect", "db_password"}, {"service", "inspect", "sec"},
		{"service", "logs", "--raw", "sec"}, {"service", "ps", "sec"},
	} {
		var b strings.Builder
		_ = l.Ctl(ctx, &b, args...)
		if strings.Contains(b.String(), value) {
			t.Errorf("shoalctl %s shows the secret value:\n%s", strings.Join(args, " "), b.String())
		}
	}
	stopEvents()
	<-evDone
	if strings.Contains(events.String(), value) {
		t.Errorf("shoalctl events shows the secret value:\n%s", events.String())
	}
	// No file under an agent host's dir (its data dir, its containerd's
	// state and snapshots) holds the value: it lives on a tmpfs under /run.
	for _, h := range l.Hosts {
		if h.Role != "agent" {
			continue
		}
		root := h.Dir(l)
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err == nil && bytes.Contains(b, []byte(value)) {
				t.Errorf("the secret value is in %s", p)
			}
			return nil
		})
	}
}
