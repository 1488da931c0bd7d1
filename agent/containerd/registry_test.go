package containerd

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/containerd/containerdtest"
	"github.com/shoal-sched/shoal/api"
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

// TestPullWithServiceCredential pulls from a registry that wants basic auth
// with the credential a service carries (--with-registry-auth) and no
// docker config on the agent: the right one pulls, a wrong one or one for
// another registry does not.
func TestPullWithServiceCredential(t *testing.T) {
	d := containerdtest.StartDaemon(t)
	reg := containerdtest.StartRegistry(t, containerdtest.WithBasicAuth("deploy", "s3rvice"))
	cases := []struct {
		name    string
		auth    *api.RegistryAuth
		wantErr bool
	}{
		{"another registry's", &api.RegistryAuth{Registry: "elsewhere:5000", Username: "deploy", Password: "s3rvice"}, true},
		{"wrong password", &api.RegistryAuth{Registry: reg.Host, Username: "deploy", Password: "nope"}, true},
		{"right", &api.RegistryAuth{Registry: reg.Host, Username: "deploy", Password: "s3rvice"}, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Address: d.Address, StateDir: t.TempDir(), InsecureRegistries: []string{reg.Host},
				Logger: testLogger(t), Namespace: fmt.Sprintf("auth-%d", i)}
			rt := (&env{opts: opts}).newRuntime(t)
			err := rt.Pull(t.Context(), reg.Image, agent.WithPullAuth(tc.auth))
			if tc.wantErr != (err != nil) {
				t.Fatalf("pull with %+v: err = %v, want error: %v", tc.auth, err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "authoriz") {
				t.Fatalf("pull error = %v, want an authorization failure", err)
			}
		})
	}
}
