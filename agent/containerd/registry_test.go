package containerd

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/agent/containerd/containerdtest"
)

func writeDockerConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPullThroughMirror(t *testing.T) {
	e := newEnv(t)
	// The upstream is a closed loopback port: only the mirror can answer.
	upstream := "127.0.0.1:1"
	opts := e.opts
	opts.Namespace += "-mirror"
	opts.InsecureRegistries = []string{upstream, e.registry.Host}
	opts.Mirrors = map[string][]string{upstream: {"http://" + e.registry.Host}}
	rt := (&env{opts: opts}).newRuntime(t)
	if err := rt.Pull(t.Context(), upstream+"/shoal/busybox:latest"); err != nil {
		t.Fatalf("pull through mirror: %v", err)
	}
}

func TestPullWithCredentials(t *testing.T) {
	d := containerdtest.StartDaemon(t)
	reg := containerdtest.StartRegistry(t, containerdtest.WithBasicAuth("shoal", "hunter2"))
	base := Options{
		Address:            d.Address,
		StateDir:           t.TempDir(),
		InsecureRegistries: []string{reg.Host},
		Logger:             testLogger(t),
	}
	cases := []struct {
		name    string
		config  string
		wantErr string
	}{
		{"no credentials", "", "authoriz"},
		{"wrong password", fmt.Sprintf(`{"auths": {%q: {"username": "shoal", "password": "nope"}}}`, reg.Host), "authoriz"},
		{"right credentials", fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, reg.Host, base64.StdEncoding.EncodeToString([]byte("shoal:hunter2"))), ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := base
			opts.Namespace = fmt.Sprintf("creds-%d", i)
			if tc.config != "" {
				opts.DockerConfig = writeDockerConfig(t, tc.config)
			}
			rt := (&env{opts: opts}).newRuntime(t)
			err := rt.Pull(t.Context(), reg.Image)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("pull: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), reg.Image)) {
				t.Fatalf("pull error = %v, want one naming %s and containing %q", err, reg.Image, tc.wantErr)
			}
		})
	}
}
