package stack

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/shoal-sched/shoal/api"
)

// TestMain silences compose-go's own log output: Load returns those
// warnings as stack warnings, which the tests check.
func TestMain(m *testing.M) {
	logrus.SetOutput(io.Discard)
	os.Exit(m.Run())
}

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// golden is what a stack looks like in a golden file: the specs in
// deployment order and the warnings as shoalctl prints them.
type golden struct {
	Services []*api.ServiceSpec `json:"services"`
	Warnings []string           `json:"warnings"`
}

// checkGolden compares st, as JSON, with testdata/NAME.golden. Absolute
// paths under dir (bind mount sources) are written as $DIR so the files do
// not depend on where the repository is.
func checkGolden(t *testing.T, name, dir string, st *Stack) {
	t.Helper()
	g := golden{Services: st.Services, Warnings: []string{}}
	for _, w := range st.Warnings {
		g.Warnings = append(g.Warnings, w.String())
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(string(b), abs, "$DIR") + "\n"
	path := filepath.Join("testdata", name+".golden")
	if *update {
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
		t.Errorf("stack differs from %s (run go test -update if the change is meant):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func load(t *testing.T, opts Options) (*Stack, error) {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "st"
	}
	return Load(t.Context(), opts)
}

func mustLoad(t *testing.T, opts Options) *Stack {
	t.Helper()
	st, err := load(t, opts)
	if err != nil {
		t.Fatalf("Load(%v): %v", opts.Files, err)
	}
	return st
}

// TestGolden loads each fixture and compares the specs with the golden
// files: every supported key lands in its spec field.
func TestGolden(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		opts  Options
	}{
		{"full", []string{"full/compose.yaml"}, Options{}},
		{"abc", []string{"abc/compose.yaml"}, Options{}},
		{"container", []string{"container/compose.yaml"}, Options{}},
		{"unsupported", []string{"unsupported/compose.yaml"}, Options{}},
		{"merge", []string{"merge/compose.yaml", "merge/compose.prod.yaml"}, Options{}},
		{"profiles_none", []string{"profiles/compose.yaml"}, Options{}},
		{"profiles_debug", []string{"profiles/compose.yaml"}, Options{Profiles: []string{"debug"}}},
		{"interp", []string{"interp/compose.yaml"}, Options{Env: []string{"FROM_SHELL=shell", "BOTH=shell"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			for _, f := range tt.files {
				opts.Files = append(opts.Files, filepath.Join("testdata", f))
			}
			st := mustLoad(t, opts)
			checkGolden(t, tt.name, filepath.Dir(opts.Files[0]), st)
		})
	}
}

// TestFullFixture spells out the fields of the full fixture that matter
// most, so that a wrong golden file cannot hide them.
func TestFullFixture(t *testing.T) {
	st := mustLoad(t, Options{Name: "shop", Files: []string{"testdata/full/compose.yaml"}})
	names := serviceNames(st)
	if want := []string{"shop_agent", "shop_migrate", "shop_api", "shop_web"}; !slices.Equal(names, want) {
		t.Fatalf("services in order %v, want %v", names, want)
	}
	web := st.Services[3]
	checks := []struct {
		what      string
		got, want any
	}{
		{"image (from .env)", web.Image, "registry.local:5000/team/web:1.4"},
		{"entrypoint", strings.Join(web.Command, " "), "/bin/sh -c"},
		{"command (interpolated default)", strings.Join(web.Args, " "), "httpd -f -p 8080 -h /www"},
		{"environment wins over env_file", slices.Contains(web.Env, "LOG=info"), true},
		{"env_file", slices.Contains(web.Env, "FROM_FILE=yes"), true},
		{"replicas", web.Replicas, uint64(3)},
		{"limit cpus", web.Resources.Limits.NanoCPUs, int64(500_000_000)},
		{"limit memory", web.Resources.Limits.MemoryBytes, int64(128 << 20)},
		{"reserve cpus", web.Resources.Reservations.NanoCPUs, int64(250_000_000)},
		{"reserve memory", web.Resources.Reservations.MemoryBytes, int64(64 << 20)},
		{"preference", strings.Join(web.Placement.Preferences, ","), "spread=node.labels.rack"},
		{"max per node", web.Placement.MaxReplicasPerNode, uint64(2)},
		{"restart", web.RestartPolicy, api.RestartPolicy{Condition: api.RestartOnFailure, Delay: api.Duration(2e9), MaxAttempts: 4, Window: api.Duration(60e9)}},
		{"update config", web.UpdateConfig, api.UpdateConfig{Parallelism: 2, Delay: api.Duration(10e9), FailureAction: "rollback",
			Monitor: api.Duration(30e9), Order: "start-first", MaxFailureRatio: 0.2}},
		{"rollback config (parallelism 0: all at once)", web.RollbackConfig, api.UpdateConfig{Parallelism: 0, Delay: api.Duration(1e9),
			FailureAction: "continue", Monitor: api.Duration(10e9), Order: "stop-first", MaxFailureRatio: 0.5}},
		{"stack label", web.Labels[api.LabelStack], "shop"},
		{"deploy label", web.Labels["team"], "web"},
		{"named volume", web.Mounts[1], api.Mount{Type: api.MountVolume, Source: "shop_cache", Target: "/var/cache/web"}},
		{"volume with its own name", web.Mounts[2].Source, "shared-logs"},
		{"bind read-only", web.Mounts[0].ReadOnly, true},
		{"depends_on", web.DependsOn, []api.Dependency{
			{Service: "shop_api", Condition: api.DependStarted},
			{Service: "shop_migrate", Condition: api.DependCompletedSuccessfully},
		}},
		{"stop grace", web.StopGracePeriod, api.Duration(30e9)},
		{"healthcheck retries", web.Healthcheck.Retries, uint64(3)},
		{"global", st.Services[0].Mode, api.ModeGlobal},
		{"disabled healthcheck", strings.Join(st.Services[1].Healthcheck.Test, " "), "NONE"},
		{"no warnings", len(st.Warnings), 0},
	}
	for _, c := range checks {
		if !equalJSON(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func serviceNames(st *Stack) []string {
	var names []string
	for _, s := range st.Services {
		names = append(names, s.Name)
	}
	return names
}

// TestUnsupportedWarns checks that each unsupported key gives exactly one
// warning naming the service and the key, and that --strict refuses them.
func TestUnsupportedWarns(t *testing.T) {
	opts := Options{Files: []string{"testdata/unsupported/compose.yaml"}}
	st := mustLoad(t, opts)
	want := []string{
		`volumes.data.driver: not supported by shoal yet; ignored`,
		`service "web": build: not supported by shoal yet; ignored`,
		`service "web": container_name: not supported by shoal yet; ignored`,
		`service "web": depends_on.db: condition service_healthy: "db" has no healthcheck here, so it turns healthy only if its image has a HEALTHCHECK`,
		`service "web": depends_on.db.restart: not supported by shoal yet; ignored`,
		`service "web": deploy.resources.limits.pids: not supported by shoal yet; ignored`,
		`service "web": environment.UNSET_VARIABLE: has no value and is not set where the stack is deployed; left out`,
		`service "web": healthcheck.start_interval: not supported by shoal yet; ignored`,
		`service "web": privileged: not supported by shoal yet; ignored`,
		`service "web": restart: not supported by shoal yet; ignored`,
		`service "web": volumes[1]: anonymous volume at /anon is not supported by shoal yet (give it a name); left out`,
		`service "web": volumes[].volume.nocopy: not supported by shoal yet; ignored`,
	}
	var got []string
	for _, w := range st.Warnings {
		got = append(got, w.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	opts.Strict = true
	_, err := load(t, opts)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("strict load: err = %v, want ErrUnsupported", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("strict error does not name %q:\n%v", w, err)
		}
	}
}

func TestCycleRejected(t *testing.T) {
	_, err := load(t, Options{Files: []string{"testdata/cycle/compose.yaml"}})
	if !errors.Is(err, ErrCycle) {
		t.Fatalf("err = %v, want ErrCycle", err)
	}
	if !strings.Contains(err.Error(), "api -> web -> api") {
		t.Errorf("error %q does not name the cycle api -> web -> api", err)
	}
}

// TestInterpolation checks ${VAR} from the shell and from .env (the shell
// wins), defaults, $$ escapes and required variables.
func TestInterpolation(t *testing.T) {
	opts := Options{Files: []string{"testdata/interp/compose.yaml"}, Env: []string{"FROM_SHELL=shell", "BOTH=shell"}}
	st := mustLoad(t, opts)
	web := st.Services[0]
	want := []string{"BOTH=shell", "DEFAULTED=fallback", "ESCAPED=$HOME", "FROM_DOTENV=dotenv", "FROM_SHELL=shell"}
	if !slices.Equal(web.Env, want) {
		t.Errorf("env = %v, want %v", web.Env, want)
	}
	if web.Image != "busybox:1.36" || web.Replicas != 2 {
		t.Errorf("image %q replicas %d, want busybox:1.36 and 2 (from .env)", web.Image, web.Replicas)
	}
	// A variable set nowhere becomes "" with compose-go's own warning.
	dir0 := t.TempDir()
	writeFile(t, filepath.Join(dir0, "compose.yaml"), "services:\n  web:\n    image: busybox\n    environment:\n      - X=${UNSET_X}\n")
	st = mustLoad(t, Options{Files: []string{filepath.Join(dir0, "compose.yaml")}})
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0].String(), `"UNSET_X" variable is not set`) {
		t.Errorf("warnings %v, want one about UNSET_X", st.Warnings)
	}
	// A required variable that is set nowhere names itself.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "compose.yaml"), "services:\n  web:\n    image: busybox:${TAG:?TAG must be set}\n")
	_, err := load(t, Options{Files: []string{filepath.Join(dir, "compose.yaml")}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "TAG must be set") {
		t.Errorf("err = %v, want the required variable's message", err)
	}
}

func TestMerge(t *testing.T) {
	st := mustLoad(t, Options{Files: []string{"testdata/merge/compose.yaml", "testdata/merge/compose.prod.yaml"}})
	if got := serviceNames(st); !slices.Equal(got, []string{"st_web", "st_extra", "st_worker"}) {
		t.Fatalf("services %v", got)
	}
	web := st.Services[0]
	if web.Image != "busybox:1.37" || web.Replicas != 4 || web.Resources.Limits.MemoryBytes != 256<<20 {
		t.Errorf("override not applied: image %q replicas %d memory %d", web.Image, web.Replicas, web.Resources.Limits.MemoryBytes)
	}
	if !slices.Equal(web.Env, []string{"KEEP=1", "LOG=warn"}) || strings.Join(web.Args, " ") != "httpd -f" {
		t.Errorf("merge lost base values: env %v args %v", web.Env, web.Args)
	}
}

func TestProfiles(t *testing.T) {
	tests := []struct {
		name     string
		profiles []string
		env      []string
		want     []string
		warnings int
	}{
		{"none", nil, nil, []string{"st_web"}, 0},
		{"debug", []string{"debug"}, nil, []string{"st_debug", "st_web", "st_tools"}, 0},
		{"tools alone drops the optional dependency", []string{"tools"}, nil, []string{"st_web", "st_tools"}, 0},
		{"COMPOSE_PROFILES", nil, []string{"COMPOSE_PROFILES=tools"}, []string{"st_web", "st_tools"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := mustLoad(t, Options{Files: []string{"testdata/profiles/compose.yaml"}, Profiles: tt.profiles, Env: tt.env})
			if got := serviceNames(st); !slices.Equal(got, tt.want) {
				t.Errorf("services %v, want %v", got, tt.want)
			}
			// Nothing of these files is unsupported (ports are honoured).
			if len(st.Warnings) != tt.warnings {
				t.Errorf("warnings %v, want %d", st.Warnings, tt.warnings)
			}
		})
	}
}

// TestBadValues checks that values shoal refuses name the compose key.
func TestBadValues(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"job mode", "deploy: {mode: replicated-job}", `services.web.deploy.mode "replicated-job": want replicated or global`},
		{"global with replicas", "deploy: {mode: global, replicas: 2}", `services.web.deploy.replicas "2": not allowed with deploy.mode global`},
		{"tiny cpu limit", "deploy: {resources: {limits: {cpus: '0.001'}}}", `services.web.deploy.resources.limits.cpus "0.001": below the smallest limit`},
		{"limit below reservation", "deploy: {resources: {limits: {memory: 32M}, reservations: {memory: 64M}}}", `services.web.deploy.resources.limits.memory "33554432"`},
		{"bad constraint", "deploy: {placement: {constraints: ['zone=a']}}", `services.web.deploy.placement.constraints[0] "zone=a"`},
		{"bad preference", "deploy: {placement: {preferences: [{spread: node.id}]}}", `services.web.deploy.placement.preferences[0] "spread=node.id"`},
		{"bad restart condition", "deploy: {restart_policy: {condition: always}}", `always`},
		{"name ending in a dash", "", ``},
		{"host sysctl", "sysctls: {kernel.panic: '1'}", `services.web.sysctls "kernel.panic": not a namespaced sysctl`},
		{"net sysctl", "sysctls: {net.core.somaxconn: '1024'}", `services.web.sysctls "net.core.somaxconn": net.* sysctls are per network namespace`},
		{"hostname template", "hostname: '{{.Service.Name'", `services.web.hostname "{{.Service.Name": not a valid template`},
		{"unknown capability", "cap_add: [FLY]", `services.web.cap_add[0] "FLY": unknown capability`},
		{"bad ulimit", "ulimits: {nofile: {soft: 10, hard: 5}}", `services.web.ulimits[0] "nofile=10:5": nofile: soft limit 10 is above the hard limit 5`},
		{"log option", "logging: {options: {compress: 'true'}}", `services.web.logging.options.compress "true": unknown log option`},
		{"relative working dir", "working_dir: www", `services.web.working_dir "www": the working directory must be an absolute path`},
		{"no image", "", `service "web" has neither an image nor a build context`},
		{"build without image", "", `services.web.image "": an image is required (shoal does not build images)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			svc := "  web:\n    image: busybox\n"
			switch tt.name {
			case "no image":
				svc = "  web:\n    command: [x]\n"
			case "build without image":
				svc = "  web:\n    build: .\n"
			case "name ending in a dash":
				svc = "  web-:\n    image: busybox\n"
				tt.want = `services.web-.(name) "st_web-": the service would be named "st_web-": must start and end with a letter or digit`
			}
			if tt.yaml != "" {
				svc += "    " + tt.yaml + "\n"
			}
			writeFile(t, filepath.Join(dir, "compose.yaml"), "services:\n"+svc)
			_, err := load(t, Options{Files: []string{filepath.Join(dir, "compose.yaml")}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestStackName(t *testing.T) {
	for _, name := range []string{"", "Shop", "a_b", "-a", strings.Repeat("a", 41)} {
		_, err := load(t, Options{Name: name, Files: []string{"testdata/abc/compose.yaml"}})
		if name == "" {
			_, err = Load(t.Context(), Options{Files: []string{"testdata/abc/compose.yaml"}})
		}
		if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "stack name") {
			t.Errorf("name %q: err = %v, want an invalid stack name", name, err)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestIncludeAndExternalVolume: include pulls services in from another
// file; an external volume keeps its own name.
func TestIncludeAndExternalVolume(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "compose.yaml"), `include:
  - other.yaml
services:
  web:
    image: busybox
    volumes: [ext:/e, named:/n]
    depends_on: [db]
volumes:
  ext:
    external: true
  named: {}
`)
	writeFile(t, filepath.Join(dir, "other.yaml"), "services:\n  db:\n    image: busybox\n")
	st := mustLoad(t, Options{Files: []string{filepath.Join(dir, "compose.yaml")}})
	if got := serviceNames(st); !slices.Equal(got, []string{"st_db", "st_web"}) || len(st.Warnings) != 0 {
		t.Fatalf("services %v, warnings %v", got, st.Warnings)
	}
	want := []api.Mount{{Type: api.MountVolume, Source: "ext", Target: "/e"}, {Type: api.MountVolume, Source: "st_named", Target: "/n"}}
	if !equalJSON(st.Services[1].Mounts, want) {
		t.Errorf("mounts %v, want %v", st.Services[1].Mounts, want)
	}
}
