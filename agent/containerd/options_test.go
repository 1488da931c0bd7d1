package containerd

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewRejectsOptions(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"no address", Options{StateDir: dir}, "containerd address is empty"},
		{"no state dir", Options{Address: "/x.sock"}, "state dir is empty"},
		{"bad namespace", Options{Address: "/x.sock", StateDir: dir, Namespace: "a/b"}, `containerd namespace "a/b"`},
		{"negative grace", Options{Address: "/x.sock", StateDir: dir, StopGrace: -time.Second}, "stop grace -1s"},
		{"negative log size", Options{Address: "/x.sock", StateDir: dir, LogMaxBytes: -1}, "log max bytes -1"},
		{"no daemon", Options{Address: filepath.Join(dir, "none.sock"), StateDir: dir}, filepath.Join(dir, "none.sock")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := New(t.Context(), tc.opts)
			if err == nil {
				rt.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
