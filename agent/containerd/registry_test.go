package containerd

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/remotes/docker"

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

func TestDockerConfigCredentials(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret:with:colons"))
	path := writeDockerConfig(t, fmt.Sprintf(`{"auths": {
		"https://index.docker.io/v1/": {"auth": %q},
		"reg.example:5000": {"username": "bob", "password": "pw"},
		"http://tokens.example/v2/": {"identitytoken": "tok"}
	}}`, auth))
	regs, err := newRegistries(Options{DockerConfig: path})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ host, user, secret string }{
		{"registry-1.docker.io", "alice", "s3cret:with:colons"},
		{"reg.example:5000", "bob", "pw"},
		{"tokens.example", "", "tok"},
		{"other.example", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.host, func(t *testing.T) {
			u, s, err := regs.credentials(tc.host)
			if err != nil || u != tc.user || s != tc.secret {
				t.Fatalf("credentials = %q, %q, %v; want %q, %q", u, s, err, tc.user, tc.secret)
			}
		})
	}
}

func TestRegistryOptionsRejected(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"http mirror of a secure registry", Options{Mirrors: map[string][]string{"docker.io": {"http://mirror:5000"}}}, `plain http needs "mirror:5000"`},
		{"mirror scheme", Options{Mirrors: map[string][]string{"docker.io": {"ftp://mirror"}}}, `scheme "ftp"`},
		{"mirror upstream with a path", Options{Mirrors: map[string][]string{"docker.io/library": {"mirror"}}}, `mirror registry "docker.io/library"`},
		{"insecure registry with a scheme", Options{InsecureRegistries: []string{"http://reg:5000"}}, `insecure registry "http://reg:5000"`},
		{"missing docker config", Options{DockerConfig: "/no/such/config.json"}, `docker config "/no/such/config.json"`},
		{"bad auth", Options{DockerConfig: writeDockerConfig(t, `{"auths": {"r": {"auth": "!!"}}}`)}, `auth of "r" is not base64`},
		{"auth without colon", Options{DockerConfig: writeDockerConfig(t, fmt.Sprintf(`{"auths": {"r": {"auth": %q}}}`, base64.StdEncoding.EncodeToString([]byte("nocolon"))))}, `auth of "r" is not user:password`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newRegistries(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestRegistryHosts(t *testing.T) {
	regs, err := newRegistries(Options{
		InsecureRegistries: []string{"mirror:5000", "plain:80"},
		Mirrors:            map[string][]string{"docker.io": {"http://mirror:5000", "https://secure-mirror/base/v2/"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	describe := func(hs []docker.RegistryHost) string {
		var parts []string
		for _, h := range hs {
			parts = append(parts, fmt.Sprintf("%s://%s%s push=%v", h.Scheme, h.Host, h.Path, h.Capabilities.Has(docker.HostCapabilityPush)))
		}
		return strings.Join(parts, " ")
	}
	cases := []struct{ host, want string }{
		{"docker.io", "http://mirror:5000/v2 push=false https://secure-mirror/base/v2 push=false https://registry-1.docker.io/v2 push=true"},
		{"plain:80", "http://plain:80/v2 push=true"},
		{"quay.io", "https://quay.io/v2 push=true"},
	}
	for _, tc := range cases {
		t.Run(tc.host, func(t *testing.T) {
			if got := describe(regs.hosts(tc.host, nil)); got != tc.want {
				t.Fatalf("hosts = %s\nwant    %s", got, tc.want)
			}
		})
	}
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
