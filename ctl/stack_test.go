package ctl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// The compose fixtures of the stack package.
const (
	abcFile         = "../stack/testdata/abc/compose.yaml"
	unsupportedFile = "../stack/testdata/unsupported/compose.yaml"
	cycleFile       = "../stack/testdata/cycle/compose.yaml"
)

// runAll plays a cluster where every replica of every service runs on
// worker-1 at the next poll.
func runAll(f *fakeControl) {
	f.onListTasks = func(f *fakeControl) {
		f.tasks = nil
		for _, svc := range f.services {
			for slot := uint64(1); slot <= svc.GetSpec().GetReplicas(); slot++ {
				f.tasks = append(f.tasks, scriptedTask(svc, slotTask{slot: slot, node: worker1, state: "running"}))
			}
		}
	}
}

func createdNames(f *fakeControl, dryRun bool) []string {
	var names []string
	for _, r := range sent[*shoalpb.CreateServiceRequest](f) {
		if r.GetDryRun() == dryRun {
			names = append(names, r.GetSpec().GetName())
		}
	}
	return names
}

// writeCompose writes a compose file into a fresh directory.
func writeCompose(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStackDeploy creates a stack in dependency order, waits for it, then
// deploys again with one service changed: only that one is updated, with
// the version it was read at.
func TestStackDeploy(t *testing.T) {
	f := newFakeControl()
	runAll(f)
	host := serveTCP(t, f)
	r := runCLI(t, host, "stack", "deploy", "-c", abcFile, "st")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := createdNames(f, false); !slices.Equal(got, []string{"st_a", "st_b", "st_c"}) {
		t.Errorf("created %v, want st_a, st_b, st_c in that order", got)
	}
	checkGolden(t, "stack_deploy", "stdout:\n"+r.stdout+"stderr:\n"+r.stderr)

	changed := writeCompose(t, "services:\n  b:\n    image: busybox:1.37\n")
	r = runCLI(t, host, "stack", "deploy", "-c", abcFile, "-c", changed, "st")
	if r.code != 0 {
		t.Fatalf("redeploy: exit %d: %s", r.code, r.stderr)
	}
	updates := sent[*shoalpb.UpdateServiceRequest](f)
	if len(updates) != 1 || updates[0].GetService() != "svcst_bnew0000000000" || updates[0].GetExpectedVersion() != 1 ||
		updates[0].GetSpec().GetImage() != "busybox:1.37" {
		t.Fatalf("updates %v, want one of st_b to busybox:1.37 at expected version 1", updates)
	}
	if n := len(createdNames(f, false)); n != 3 {
		t.Errorf("redeploy created services: %d creates in all", n)
	}
	checkGolden(t, "stack_redeploy", "stdout:\n"+r.stdout+"stderr:\n"+r.stderr)

	// Nothing changed: nothing is written and nothing is waited for.
	before := len(f.requests)
	r = runCLI(t, host, "stack", "deploy", "-c", abcFile, "-c", changed, "st")
	if r.code != 0 || len(sent[*shoalpb.UpdateServiceRequest](f)) != 1 || strings.Contains(r.stderr, "converged") {
		t.Errorf("unchanged deploy: exit %d, %d updates, stderr %q", r.code, len(sent[*shoalpb.UpdateServiceRequest](f)), r.stderr)
	}
	if n := len(f.requests) - before; n != 2 {
		t.Errorf("unchanged deploy sent %d requests, want 2 (the lists of services and networks)", n)
	}
}

// TestStackDeployDryRun prints the plan of every service and writes
// nothing.
func TestStackDeployDryRun(t *testing.T) {
	f := newFakeControl()
	runAll(f)
	host := serveTCP(t, f)
	mustRun(t, host, "stack", "deploy", "-d", "-c", abcFile, "st")
	// c is left out (kept, or removed with --prune), b changes, a stays.
	partial := writeCompose(t, `services:
  a:
    image: busybox:1.36
    command: ["sleep", "1d"]
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 64M}
        reservations: {cpus: "0.1", memory: 16M}
  b:
    image: busybox:1.37
    depends_on: [a]
  d:
    image: busybox:1.36
`)
	before := len(f.requests)
	out := mustRun(t, host, "stack", "deploy", "--dry-run", "--prune", "-c", partial, "st")
	checkGolden(t, "stack_deploy_dry_run", out)
	for _, r := range f.requests[before:] {
		switch r := r.(type) {
		case *shoalpb.CreateServiceRequest:
			if !r.GetDryRun() {
				t.Errorf("dry run sent a real create: %v", r)
			}
		case *shoalpb.UpdateServiceRequest:
			if !r.GetDryRun() {
				t.Errorf("dry run sent a real update: %v", r)
			}
		case *shoalpb.RemoveServiceRequest:
			t.Errorf("dry run removed %v", r)
		}
	}
	if len(f.services) != 5 {
		t.Errorf("%d services after the dry run, want the 5 there were", len(f.services))
	}
	js := mustRun(t, host, "stack", "deploy", "--dry-run", "-o", "json", "-c", partial, "st")
	var res struct {
		DryRun   bool `json:"dry_run"`
		Services []struct {
			Service, Action string
			Plan            map[string]any
		}
	}
	if err := json.Unmarshal([]byte(js), &res); err != nil || !res.DryRun || len(res.Services) != 4 || res.Services[3].Action != "keep" ||
		res.Services[1].Plan["action"] != "update" {
		t.Errorf("dry-run JSON %v (%v):\n%s", res, err, js)
	}
}

// TestStackDeployPrune removes the services left out of the files only
// with --prune.
func TestStackDeployPrune(t *testing.T) {
	f := newFakeControl()
	host := serveTCP(t, f)
	mustRun(t, host, "stack", "deploy", "-d", "-c", abcFile, "st")
	onlyA := writeCompose(t, "services:\n  a:\n    image: busybox:1.36\n    command: [sleep, 1d]\n")
	r := runCLI(t, host, "stack", "deploy", "-d", "-c", onlyA, "st")
	if r.code != 0 || !strings.Contains(r.stderr, "Service st_b is no longer in the compose files; kept (use --prune to remove it)") {
		t.Errorf("without --prune: exit %d, stderr %q", r.code, r.stderr)
	}
	if n := len(sent[*shoalpb.RemoveServiceRequest](f)); n != 0 {
		t.Fatalf("removed %d services without --prune", n)
	}
	mustRun(t, host, "stack", "deploy", "-d", "--prune", "-c", onlyA, "st")
	var removed []string
	for _, r := range sent[*shoalpb.RemoveServiceRequest](f) {
		removed = append(removed, r.GetService())
	}
	if !slices.Equal(removed, []string{"svcst_bnew0000000000", "svcst_cnew0000000000"}) {
		t.Errorf("removed %v, want st_b and st_c", removed)
	}
}

// TestStackDeployRefused checks deploys that are refused before anything
// is written.
func TestStackDeployRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, host string)
		args  []string
		want  []string
	}{
		{"cycle", nil, []string{"-c", cycleFile}, []string{"depends_on cycle", "api -> web -> api"}},
		{"strict", nil, []string{"--strict", "-c", unsupportedFile},
			[]string{"unsupported compose attributes (--strict)", `service "web": privileged: not supported by shoal yet`, `service "web": restart: not supported`}},
		{"no file", nil, nil, []string{"no compose file: give one or more with -c FILE"}},
		{"bad stack name", nil, []string{"-c", abcFile, "--", "Shop"}, []string{`stack name "Shop"`}},
		{"name taken outside the stack", func(t *testing.T, host string) {
			mustRun(t, host, "service", "create", "-d", "--name", "st_b", "busybox")
		}, []string{"-c", abcFile}, []string{`service "st_b" already exists and is not part of stack "st"`}},
		{"mode change", func(t *testing.T, host string) {
			mustRun(t, host, "stack", "deploy", "-d", "-c", abcFile, "st")
		}, []string{"-c", abcFile, "-c", "testdata/global_b.yaml"}, []string{`service "st_b": deploy.mode changed from replicated to global`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeControl()
			host := serveTCP(t, f)
			if tt.setup != nil {
				tt.setup(t, host)
			}
			before := len(createdNames(f, false)) + len(sent[*shoalpb.UpdateServiceRequest](f))
			args := append([]string{"stack", "deploy"}, tt.args...)
			if !slices.Contains(args, "--") {
				args = append(args, "st")
			}
			mustFail(t, host, args, tt.want...)
			if after := len(createdNames(f, false)) + len(sent[*shoalpb.UpdateServiceRequest](f)); after != before {
				t.Errorf("a refused deploy wrote %d services", after-before)
			}
		})
	}
}

// TestStackWarnings prints one warning line per unsupported key.
func TestStackWarnings(t *testing.T) {
	f := newFakeControl()
	r := runCLI(t, serveTCP(t, f), "stack", "deploy", "-d", "-c", unsupportedFile, "st")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 12 {
		t.Errorf("%d stderr lines, want 12 warnings (ports, networks, healthchecks, update and rollback configs and tmpfs volumes are supported):\n%s", len(lines), r.stderr)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "Warning: ") {
			t.Errorf("line %q is not a warning", l)
		}
	}
	for _, want := range []string{`Warning: service "web": build: not supported by shoal yet; ignored`,
		`Warning: service "web": depends_on.db: condition service_healthy: "db" has no healthcheck here`} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
}

// TestStackReads covers stack ls, services, ps and rm.
func TestStackReads(t *testing.T) {
	f := newFakeControl()
	runAll(f)
	host := serveTCP(t, f)
	mustRun(t, host, "stack", "deploy", "-c", abcFile, "st")
	f.onListTasks = nil
	tests := []struct {
		name string
		args []string
	}{
		{"stack_ls", []string{"stack", "ls"}},
		{"stack_ls_json", []string{"stack", "ls", "-o", "json"}},
		{"stack_services", []string{"stack", "services", "st"}},
		{"stack_services_filter", []string{"stack", "services", "--filter", "name=st_b", "--filter", "name=st_c", "st"}},
		{"stack_ps", []string{"stack", "ps", "st"}},
		{"stack_ps_quiet", []string{"stack", "ps", "-q", "--filter", "name=st_b", "st"}},
		{"stack_ps_yaml", []string{"stack", "ps", "-o", "yaml", "--filter", "name=st_a", "st"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGolden(t, tt.name, mustRun(t, host, tt.args...))
		})
	}
	mustFail(t, host, []string{"stack", "ps", "nope"}, `stack "nope" not found`)
	out := mustRun(t, host, "stack", "rm", "st")
	if out != "Removing service st_c\nRemoving service st_b\nRemoving service st_a\nRemoving network st_default\n" {
		t.Errorf("stack rm printed %q, want the dependents removed first", out)
	}
	if len(f.services) != 2 {
		t.Errorf("%d services left, want the 2 outside the stack", len(f.services))
	}
}
