package ctl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/shoal-sched/shoal/api"
)

// parseCreate runs service create's flag parsing and spec building.
func parseCreate(t *testing.T, args ...string) (*api.ServiceSpec, error) {
	t.Helper()
	var f serviceFlags
	fs := pflag.NewFlagSet("create", pflag.ContinueOnError)
	f.register(fs, false)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return f.createSpec(func(n string) bool { return fs.Changed(n) }, fs.Args())
}

func TestContainerFlags(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "app.env")
	if err := os.WriteFile(envFile, []byte("# comment\nA=from-file\n\nB=file\n  C=spaced\nSHOAL_TEST_FROM_ENV\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHOAL_TEST_FROM_ENV", "yes")
	s, err := parseCreate(t, "--name", "web", "--hostname", "{{.Service.Name}}-{{.Task.Slot}}", "--stop-signal", "SIGINT",
		"--init", "--read-only", "-t", "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN", "--sysctl", "kernel.shmmax=65536",
		"--ulimit", "nofile=1024:2048", "--container-label", "team=db", "--label", "tier=back", "--group", "audio",
		"--env-file", envFile, "--env", "B=flag", "--log-opt", "max-size=10m", "--log-opt", "max-file=1",
		"--mount", "type=tmpfs,target=/scratch,tmpfs-size=64m,tmpfs-mode=700", "busybox")
	if err != nil {
		t.Fatal(err)
	}
	want := api.ContainerOptions{
		Hostname: "{{.Service.Name}}-{{.Task.Slot}}", StopSignal: "SIGINT", Init: true, ReadOnly: true, TTY: true,
		CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"CHOWN"}, Sysctls: map[string]string{"kernel.shmmax": "65536"},
		Ulimits: []api.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}}, Groups: []string{"audio"},
		Labels: map[string]string{"team": "db"}, LogMaxSize: 10 << 20, LogMaxFiles: 1,
	}
	if got := s.Container; got == nil || !equalJSONValues(*got, want) {
		t.Fatalf("container options = %+v, want %+v", got, want)
	}
	if s.Labels["tier"] != "back" || s.Labels["team"] != "" {
		t.Errorf("service labels %v: want tier only (container labels apart)", s.Labels)
	}
	if want := []string{"A=from-file", "C=spaced", "SHOAL_TEST_FROM_ENV=yes", "B=flag"}; !slices.Equal(s.Env, want) {
		t.Errorf("env = %q, want %q", s.Env, want)
	}
	if m := s.Mounts[0]; m.Type != api.MountTmpfs || m.TmpfsSize != 64<<20 || m.TmpfsMode != 0o700 {
		t.Errorf("tmpfs mount = %+v", m)
	}
}

func TestContainerFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--hostname", "{{.Service.Name"}, `spec.container.hostname (--hostname) "{{.Service.Name": not a valid template`},
		{[]string{"--sysctl", "kernel.panic=1"}, `spec.container.sysctls (--sysctl) "kernel.panic": not a namespaced sysctl`},
		{[]string{"--sysctl", "net.core.somaxconn=1024"}, `net.* sysctls are per network namespace`},
		{[]string{"--ulimit", "nofile=x"}, `--ulimit "nofile=x": soft limit "x": not a number`},
		{[]string{"--ulimit", "bogus=1"}, `unknown ulimit "bogus"`},
		{[]string{"--cap-add", "CAP_FLY"}, `spec.container.cap_add[0] (--cap-add) "CAP_FLY": unknown capability`},
		{[]string{"--stop-signal", "SIGNOPE"}, `--stop-signal) "SIGNOPE": unknown signal`},
		{[]string{"--log-opt", "max-file=3"}, `at most 2`},
		{[]string{"--log-opt", "compress=true"}, `unknown log option "compress": want max-size or max-file`},
		{[]string{"--env-file", "/nonexistent/env"}, `--env-file "/nonexistent/env"`},
		{[]string{"--mount", "type=tmpfs,source=/x,target=/t"}, `a tmpfs mount has no source`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseCreate(t, append(append([]string{"--name", "web"}, tc.args...), "busybox")...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func equalJSONValues(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestFormatErrors(t *testing.T) {
	for _, tc := range []struct{ format, want string }{
		{"{{.Name", `--format "{{.Name": not a valid template`},
	} {
		if _, err := parseFormat(tc.format); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFormat(%q) = %v, want %q", tc.format, err, tc.want)
		}
	}
	host := serveTCP(t, newFakeControl())
	mustFail(t, host, []string{"service", "ls", "--format", "{{.Nope}}"}, "--format", "Nope")
	mustFail(t, host, []string{"node", "ls", "--format", "{{.Hostname"}, `--format "{{.Hostname": not a valid template`)
}

// TestNodePsSelf: node ps without a node lists the tasks of the node
// named like this host, and says what to do when there is none.
func TestNodePsSelf(t *testing.T) {
	host := serveTCP(t, newFakeControl())
	for _, tc := range []struct {
		hostname string
		want     []string
		fails    bool
	}{
		{"worker-1", []string{"web.1", "agent.nodeworker1a"}, false},
		{"laptop", []string{`no node is named "laptop" like this host`}, true},
	} {
		app, out, errOut := testApp(host)
		app.Hostname = func() (string, error) { return tc.hostname, nil }
		code := Execute(t.Context(), app, []string{"node", "ps"})
		text := out.String() + errOut.String()
		if (code != 0) != tc.fails {
			t.Errorf("%s: exit %d\n%s", tc.hostname, code, text)
		}
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.hostname, w, text)
			}
		}
		if !tc.fails && strings.Contains(text, "web.2") {
			t.Errorf("%s: lists a task of another node:\n%s", tc.hostname, text)
		}
	}
}

// TestQuietWait: -q waits as usual but prints only the ID, no progress.
func TestQuietWait(t *testing.T) {
	f := newFakeControl()
	scriptService(f, "api",
		nil,
		[]slotTask{{slot: 1, state: "new"}},
		[]slotTask{{slot: 1, node: worker1, state: "running"}},
	)
	r := runCLI(t, serveTCP(t, f), "service", "create", "-q", "--name", "api", "busybox")
	if r.code != 0 || r.stderr != "" || strings.TrimSpace(r.stdout) == "" || strings.Contains(r.stdout, "\n\n") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want the ID only", r.code, r.stdout, r.stderr)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"10m":                  now.Add(-10 * time.Minute),
		"2026-01-02T14:00:00Z": time.Date(2026, 1, 2, 14, 0, 0, 0, time.UTC),
		"2026-01-01":           time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, err := parseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-5m"} {
		if _, err := parseSince(bad, now); err == nil || !strings.Contains(err.Error(), "--since") {
			t.Errorf("parseSince(%q) = %v, want an error naming --since", bad, err)
		}
	}
}
