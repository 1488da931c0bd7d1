package ctl

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shoal-sched/shoal/internal/seal"
)

// The unlock key is checked before it is sent, and read from a file.
func TestClusterUnlockReadsAndChecksTheKey(t *testing.T) {
	f := newFakeControl()
	host := serveTCP(t, f)
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustFail(t, host, []string{"cluster", "unlock", "--key-file", bad}, "not an unlock key")
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mustFail(t, host, []string{"cluster", "unlock", "--key-file", empty}, "no unlock key given")
	good := filepath.Join(t.TempDir(), "good")
	if err := os.WriteFile(good, []byte(seal.FormatUnlockKey(seal.NewKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The fake control answers Unimplemented: what matters is that the
	// request left shoalctl.
	mustFail(t, host, []string{"cluster", "unlock", "--key-file", good}, "")
}
