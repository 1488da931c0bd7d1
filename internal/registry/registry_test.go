package registry

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/remotes/docker"
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
	regs, err := New(Options{DockerConfig: path})
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
		{"insecure registry with a scheme", Options{Insecure: []string{"http://reg:5000"}}, `insecure registry "http://reg:5000"`},
		{"missing docker config", Options{DockerConfig: "/no/such/config.json"}, `docker config "/no/such/config.json"`},
		{"bad auth", Options{DockerConfig: writeDockerConfig(t, `{"auths": {"r": {"auth": "!!"}}}`)}, `auth of "r" is not base64`},
		{"auth without colon", Options{DockerConfig: writeDockerConfig(t, fmt.Sprintf(`{"auths": {"r": {"auth": %q}}}`, base64.StdEncoding.EncodeToString([]byte("nocolon"))))}, `auth of "r" is not user:password`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestRegistryHosts(t *testing.T) {
	regs, err := New(Options{
		Insecure: []string{"mirror:5000", "plain:80"},
		Mirrors:  map[string][]string{"docker.io": {"http://mirror:5000", "https://secure-mirror/base/v2/"}},
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
