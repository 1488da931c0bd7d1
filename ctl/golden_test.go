package ctl

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// checkGolden compares got with testdata/NAME.golden (or rewrites it with
// -update).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test -update if the change is meant):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestGolden runs every command that prints state, in tables and JSON,
// against a fakeControl and compares the output with testdata/*.golden.
func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"service_ls", []string{"service", "ls"}},
		{"service_ls_notrunc", []string{"service", "ls", "--no-trunc"}},
		{"service_ls_json", []string{"service", "ls", "-o", "json"}},
		{"service_ls_yaml", []string{"service", "ls", "-o", "yaml"}},
		{"service_inspect_yaml", []string{"service", "inspect", "-o", "yaml", "web"}},
		{"service_ps", []string{"service", "ps", "web", "agent"}},
		{"service_ps_json", []string{"service", "ps", "web", "--output", "json"}},
		{"service_inspect", []string{"service", "inspect", "web"}},
		{"service_inspect_pretty", []string{"service", "inspect", "--pretty", "web", "agent"}},
		{"service_create", []string{"service", "create", "-d", "--name", "api", "busybox"}},
		{"service_create_json", []string{"service", "create", "-d", "--name", "api", "-o", "json", "--replicas", "2", "busybox"}},
		{"service_create_dry_run", []string{"service", "create", "--name", "api", "--replicas", "3", "--dry-run", "busybox"}},
		{"service_update_dry_run", []string{"service", "update", "--image", "busybox:1.37", "--dry-run", "web"}},
		{"service_scale", []string{"service", "scale", "-d", "web=5"}},
		{"service_scale_json", []string{"service", "scale", "-d", "-o", "json", "web=5"}},
		{"service_rm", []string{"service", "rm", "web", "agent"}},
		{"service_rm_json", []string{"service", "rm", "-o", "json", "web"}},
		{"node_ls", []string{"node", "ls"}},
		{"node_ls_json", []string{"node", "ls", "-o", "json"}},
		{"node_inspect", []string{"node", "inspect", "worker-1"}},
		{"node_inspect_pretty", []string{"node", "inspect", "--pretty", "worker-1", "worker-2"}},
		{"node_update", []string{"node", "update", "-d", "--availability", "drain", "worker-1"}},
		{"node_rm", []string{"node", "rm", "worker-2"}},
		{"cluster_status", []string{"cluster", "status"}},
		{"cluster_status_json", []string{"cluster", "status", "-o", "json"}},
		{"node_ps", []string{"node", "ps", "worker-1"}},
		{"node_ps_all", []string{"node", "ps", "--all"}},
		{"format_service_ls", []string{"service", "ls", "--format", "{{.Name}}: {{.Replicas}}"}},
		{"format_service_ls_table", []string{"service", "ls", "--format", "table {{.Name}}\t{{.Image}}"}},
		{"format_service_ls_jsonlines", []string{"service", "ls", "--format", "{{json .}}"}},
		{"format_service_ps_table", []string{"service", "ps", "--format", "table {{.Name}}\t{{.Node}}\t{{.DesiredState}}", "web"}},
		{"format_node_ls", []string{"node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}} {{.Role}}"}},
		{"format_node_ls_jsonword", []string{"node", "ls", "--format", "json"}},
		{"format_service_inspect", []string{"service", "inspect", "--format", "{{.ID}} {{.Spec.Name}} v{{.SpecVersion}} {{.Spec.Replicas}}", "web", "agent"}},
		{"format_node_inspect", []string{"node", "inspect", "--format", "{{.Hostname}} {{.Status}} {{json .Labels}}", "worker-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := serveTCP(t, newFakeControl())
			out := mustRun(t, host, tt.args...)
			if strings.HasSuffix(tt.name, "_json") || tt.name == "service_inspect" || tt.name == "node_inspect" {
				if !json.Valid([]byte(out)) {
					t.Fatalf("output is not JSON:\n%s", out)
				}
			}
			checkGolden(t, tt.name, out)
		})
	}
}

// TestJSONOutput checks that the JSON of each command parses and carries
// the field names docs/cli-json.md promises.
func TestJSONOutput(t *testing.T) {
	tests := []struct {
		args []string
		keys []string // dotted paths that must exist; [0] indexes arrays
	}{
		{[]string{"service", "ls"}, []string{"[0].service.spec.name", "[0].running", "[0].desired"}},
		{[]string{"service", "inspect", "web"}, []string{"[0].id", "[0].spec.reservations.memory_bytes", "[0].spec_version", "[0].spec.restart_policy.delay"}},
		{[]string{"service", "ps", "web"}, []string{"[0].id", "[0].status.state", "[0].desired_state", "[0].node_id"}},
		{[]string{"service", "create", "-d", "--name", "api", "busybox"}, []string{"service.id", "index", "plan"}},
		{[]string{"service", "update", "-d", "--replicas", "4", "web"}, []string{"service.spec.replicas", "index"}},
		{[]string{"service", "scale", "-d", "web=2"}, []string{"[0].service.spec.replicas", "[0].index"}},
		{[]string{"service", "rm", "web"}, []string{"[0].name", "[0].index"}},
		{[]string{"node", "ls"}, []string{"[0].node.hostname", "[0].reserved.nano_cpus", "[0].tasks"}},
		{[]string{"node", "ps", "worker-1"}, []string{"[0].id", "[0].node_id"}},
		{[]string{"node", "inspect", "worker-1"}, []string{"[0].hostname", "[0].resources.memory_bytes", "[0].availability"}},
		{[]string{"node", "update", "--label-add", "x=1", "worker-1"}, []string{"id", "labels.x"}},
		{[]string{"node", "rm", "worker-2"}, []string{"[0].name", "[0].index"}},
		{[]string{"cluster", "status"}, []string{"cluster_id", "leader_id", "commit_index", "managers.[0].raft_state", "managers.[0].reachable"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			host := serveTCP(t, newFakeControl())
			out := mustRun(t, host, append([]string{"--output", "json"}, tt.args...)...)
			var v any
			dec := json.NewDecoder(bytes.NewReader([]byte(out)))
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("output does not parse as JSON: %v\n%s", err, out)
			}
			if dec.More() {
				t.Fatalf("output holds more than one JSON value:\n%s", out)
			}
			for _, k := range tt.keys {
				if !hasPath(v, strings.Split(k, ".")) {
					t.Errorf("JSON has no %q:\n%s", k, out)
				}
			}
		})
	}
}

func hasPath(v any, path []string) bool {
	if len(path) == 0 {
		return true
	}
	if path[0] == "[0]" {
		a, ok := v.([]any)
		return ok && len(a) > 0 && hasPath(a[0], path[1:])
	}
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	next, ok := m[path[0]]
	return ok && hasPath(next, path[1:])
}

// TestListJSONIsTheObjects: every list command prints its objects as one
// JSON array (YAML: one sequence), as docker does, never the response
// they were paged in (next_page_token).
func TestListJSONIsTheObjects(t *testing.T) {
	stack := newFakeControl()
	runAll(stack)
	stackHost := serveTCP(t, stack)
	mustRun(t, stackHost, "stack", "deploy", "-c", abcFile, "st")
	stack.onListTasks = nil
	hosts := map[string]string{
		"control": serveTCP(t, newFakeControl()),
		"network": serveTCP(t, newFakeNetControl()),
		"secret":  serveTCP(t, newFakeSecretControl()),
		"stack":   stackHost,
	}
	for _, tt := range []struct {
		fake string
		args []string
	}{
		{"control", []string{"service", "ls"}},
		{"control", []string{"service", "ps", "web"}},
		{"control", []string{"node", "ls"}},
		{"control", []string{"node", "ps", "worker-1"}},
		{"control", []string{"node", "ps", "--all"}},
		{"network", []string{"network", "ls"}},
		{"secret", []string{"secret", "ls"}},
		{"secret", []string{"config", "ls"}},
		{"stack", []string{"stack", "ls"}},
		{"stack", []string{"stack", "services", "st"}},
		{"stack", []string{"stack", "ps", "st"}},
	} {
		for _, format := range []string{"json", "yaml"} {
			t.Run(strings.Join(tt.args, "_")+"_"+format, func(t *testing.T) {
				out := mustRun(t, hosts[tt.fake], append(tt.args, "-o", format)...)
				if strings.Contains(out, "next_page_token") {
					t.Errorf("the output holds the paged response:\n%s", out)
				}
				if format == "yaml" {
					if !strings.HasPrefix(out, "- ") {
						t.Errorf("the YAML is not a sequence:\n%s", out)
					}
					return
				}
				var list []map[string]any
				if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) == 0 {
					t.Errorf("the JSON is not a non-empty array of objects (%v):\n%s", err, out)
				}
			})
		}
	}
}
