package api

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/distribution/reference"
)

// validSpec returns a spec that passes validation, for tests to break.
func validSpec() *ServiceSpec {
	s := &ServiceSpec{Name: "web", Image: "busybox:1.36"}
	ApplyDefaults(s)
	return s
}

func TestApplyDefaults(t *testing.T) {
	s := &ServiceSpec{Name: "web", Image: "busybox"}
	ApplyDefaults(s)
	if s.Mode != ModeReplicated || s.Replicas != 1 {
		t.Errorf("mode/replicas = %s/%d, want replicated/1", s.Mode, s.Replicas)
	}
	if s.RestartPolicy.Condition != RestartAny || s.RestartPolicy.Delay != Duration(5*time.Second) {
		t.Errorf("restart = %+v, want any 5s", s.RestartPolicy)
	}
	if s.Placement.Strategy != StrategySpread {
		t.Errorf("strategy = %q, want spread", s.Placement.Strategy)
	}
	if s.StopGracePeriod != Duration(10*time.Second) {
		t.Errorf("stop grace = %v, want 10s", s.StopGracePeriod)
	}
	if s.UpdateConfig.Parallelism != 1 {
		t.Errorf("parallelism = %d, want 1", s.UpdateConfig.Parallelism)
	}
	if err := ValidateServiceSpec(s); err != nil {
		t.Fatalf("defaulted spec invalid: %v", err)
	}

	// An explicit key field keeps its zero companions.
	z := &ServiceSpec{Name: "web", Image: "busybox", Mode: ModeReplicated,
		RestartPolicy: RestartPolicy{Condition: RestartOnFailure}, DependsOn: []Dependency{{Service: "db"}}}
	ApplyDefaults(z)
	if z.Replicas != 0 || z.RestartPolicy.Delay != 0 {
		t.Errorf("explicit zeros changed: replicas %d, delay %v", z.Replicas, z.RestartPolicy.Delay)
	}
	if z.DependsOn[0].Condition != DependStarted {
		t.Errorf("depends_on condition = %q, want %q", z.DependsOn[0].Condition, DependStarted)
	}
	g := &ServiceSpec{Mode: ModeGlobal}
	ApplyDefaults(g)
	if g.Replicas != 0 {
		t.Errorf("global replicas = %d, want 0", g.Replicas)
	}
}

func TestValidateServiceName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string
	}{
		{"web", ""}, {"a", ""}, {"web-1", ""}, {"stack_web", ""}, {"0abc", ""},
		{strings.Repeat("a", 63), ""},
		{"", "empty name"},
		{strings.Repeat("a", 64), "64 characters"},
		{"Web", ""}, {"demo_B", ""}, {"A", ""}, {"web.1", ""}, {"My-App_2.api", ""},
		{"web 1", `character ' ' at 3`},
		{"web/1", `character '/' at 3`},
		{".web", "must start and end"},
		{"web.", "must start and end"},
		{"-web", "must start and end"},
		{"web-", "must start and end"},
		{"_web", "must start and end"},
		{"web_", "must start and end"},
		{"wéb", `character 'é' at 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateServiceName(tt.name)
			checkErr(t, err, tt.wantErr)
		})
	}
}

func TestValidateImage(t *testing.T) {
	tests := []struct {
		ref     string
		wantErr string
	}{
		{"busybox", ""},
		{"busybox:1.36", ""},
		{"registry.lab:5000/team/app:v1", ""},
		{"127.0.0.1:5000/busybox", ""},
		{"busybox@sha256:" + strings.Repeat("a", 64), ""},
		{"", "empty image reference"},
		{"BusyBox", "must be lowercase"},
		{"busybox:", "invalid reference format"},
		{"busy box", "invalid reference format"},
		{"busybox@sha256:abc", "invalid"},
		{strings.Repeat("a", 64), "cannot specify 64-byte hexadecimal strings"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			checkErr(t, ValidateImage(tt.ref), tt.wantErr)
		})
	}
}

func TestValidateServiceSpec(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(s *ServiceSpec)
		wantErr string // "" = valid; otherwise a substring naming field and value
	}{
		{"valid", func(s *ServiceSpec) {}, ""},
		{"full", func(s *ServiceSpec) {
			s.Env = []string{"A=1", "B="}
			s.Labels = map[string]string{"tier": "front"}
			s.Resources = ResourceRequirements{Reservations: Resources{NanoCPUs: 5e8, MemoryBytes: 64 << 20}, Limits: Resources{NanoCPUs: 1e9, MemoryBytes: 128 << 20}}
			s.Placement = Placement{Constraints: []string{"node.labels.zone==a", "node.role!=manager"}, Preferences: []string{"spread=node.labels.zone"}, MaxReplicasPerNode: 2, Strategy: StrategyBinpack}
			s.Mounts = []Mount{{Type: MountBind, Source: "/srv", Target: "/data", ReadOnly: true}, {Type: MountVolume, Source: "cache_1", Target: "/cache"}}
			s.DependsOn = []Dependency{{Service: "db", Condition: DependHealthy}}
			s.Healthcheck = &Healthcheck{Test: []string{"CMD-SHELL", "true"}, Interval: Duration(time.Second)}
			s.Dir = "/app"
		}, ""},
		{"global with replicas", func(s *ServiceSpec) { s.Mode = ModeGlobal; s.Replicas = 3 }, `spec.replicas "3": must be 0 in global mode`},
		{"global", func(s *ServiceSpec) { s.Mode = ModeGlobal; s.Replicas = 0 }, ""},
		{"replicated zero", func(s *ServiceSpec) { s.Replicas = 0 }, ""},
		{"bad mode", func(s *ServiceSpec) { s.Mode = "daemon" }, `spec.mode "daemon": want replicated or global`},
		{"bad name", func(s *ServiceSpec) { s.Name = "web app" }, `spec.name "web app"`},
		{"bad image", func(s *ServiceSpec) { s.Image = "Busy" }, `spec.image "Busy": not a valid image reference`},
		{"no image", func(s *ServiceSpec) { s.Image = "" }, `spec.image "": empty image reference`},
		{"negative cpu", func(s *ServiceSpec) { s.Resources.Reservations.NanoCPUs = -1 }, `spec.resources.reservations.nano_cpus "-0.000000001": must not be negative`},
		{"negative memory", func(s *ServiceSpec) { s.Resources.Limits.MemoryBytes = -1 }, `spec.resources.limits.memory_bytes "-1": must not be negative`},
		{"limit below reservation memory", func(s *ServiceSpec) {
			s.Resources.Reservations.MemoryBytes = 128 << 20
			s.Resources.Limits.MemoryBytes = 64 << 20
		}, `spec.resources.limits.memory_bytes "67108864": limit (64MiB) is below the reservation (128MiB)`},
		{"limit below reservation cpu", func(s *ServiceSpec) {
			s.Resources.Reservations.NanoCPUs = 2e9
			s.Resources.Limits.NanoCPUs = 1e9
		}, `spec.resources.limits.nano_cpus "1": limit is below the reservation (2 CPUs)`},
		{"tiny memory limit", func(s *ServiceSpec) { s.Resources.Limits.MemoryBytes = 1 << 20 }, `below the smallest limit, 6MiB`},
		{"tiny cpu limit", func(s *ServiceSpec) { s.Resources.Limits.NanoCPUs = 1000 }, `spec.resources.limits.nano_cpus "0.000001": below the smallest limit, 0.01 CPUs`},
		{"bad constraint", func(s *ServiceSpec) { s.Placement.Constraints = []string{"zone=a"} }, `spec.placement.constraints[0] "zone=a": invalid placement constraint "zone=a": no operator`},
		{"constraint bad key", func(s *ServiceSpec) { s.Placement.Constraints = []string{"zone==a"} }, `unknown field "zone"`},
		{"constraint empty value", func(s *ServiceSpec) { s.Placement.Constraints = []string{"node.role=="} }, `spec.placement.constraints[0] "node.role==": invalid placement constraint "node.role==": missing value after ==`},
		{"bad preference", func(s *ServiceSpec) { s.Placement.Preferences = []string{"pack=node.labels.zone"} }, `spec.placement.preferences[0] "pack=node.labels.zone": invalid placement preference "pack=node.labels.zone": unknown kind "pack"`},
		{"preference bad key", func(s *ServiceSpec) { s.Placement.Preferences = []string{"spread=zone"} }, `spread over "zone"`},
		{"bad strategy", func(s *ServiceSpec) { s.Placement.Strategy = "random" }, `spec.placement.strategy "random": want spread or binpack`},
		{"bad restart", func(s *ServiceSpec) { s.RestartPolicy.Condition = "always" }, `spec.restart_policy.condition "always": want any, on-failure or none`},
		{"negative delay", func(s *ServiceSpec) { s.RestartPolicy.Delay = -Duration(time.Second) }, `spec.restart_policy.delay "-1s": must not be negative`},
		{"ratio over 1", func(s *ServiceSpec) { s.UpdateConfig.Parallelism = 0; s.UpdateConfig.MaxFailureRatio = 1.5 }, `spec.update_config.max_failure_ratio "1.5": must be between 0 and 1`},
		{"negative ratio", func(s *ServiceSpec) { s.RollbackConfig.MaxFailureRatio = -0.1 }, `spec.rollback_config.max_failure_ratio "-0.1"`},
		{"negative delay", func(s *ServiceSpec) { s.UpdateConfig.Delay = -1 }, `spec.update_config.delay`},
		{"negative monitor", func(s *ServiceSpec) { s.RollbackConfig.Monitor = -1 }, `spec.rollback_config.monitor`},
		{"bad rollback order", func(s *ServiceSpec) { s.RollbackConfig.Order = "sideways" }, `spec.rollback_config.order "sideways"`},
		{"rollback rolls back", func(s *ServiceSpec) { s.RollbackConfig.FailureAction = "rollback" }, `spec.rollback_config.failure_action "rollback": a rollback cannot roll back`},
		{"canary = replicas", func(s *ServiceSpec) { s.Replicas = 3; s.UpdateConfig.Canary = 3 }, `spec.update_config.canary "3": must be less than the replicas (3)`},
		{"canary in rollback", func(s *ServiceSpec) { s.RollbackConfig.Canary = 1 }, `spec.rollback_config.canary "1": canaries are an update setting only`},
		{"auto-promote alone", func(s *ServiceSpec) { s.UpdateConfig.AutoPromote = true }, `spec.update_config.auto_promote "true": needs canary`},
		{"bad failure action", func(s *ServiceSpec) { s.UpdateConfig.FailureAction = "panic" }, `spec.update_config.failure_action "panic"`},
		{"bad order", func(s *ServiceSpec) { s.UpdateConfig.Order = "any" }, `spec.update_config.order "any"`},
		{"bad mount type", func(s *ServiceSpec) { s.Mounts = []Mount{{Type: "npipe", Target: "/t"}} }, `spec.mounts[0].type "npipe": want bind, volume or tmpfs`},
		{"tmpfs with a source", func(s *ServiceSpec) { s.Mounts = []Mount{{Type: "tmpfs", Source: "/x", Target: "/t"}} }, `spec.mounts[0].source "/x": a tmpfs mount has no source`},
		{"relative target", func(s *ServiceSpec) { s.Mounts = []Mount{{Type: MountVolume, Source: "v", Target: "data"}} }, `spec.mounts[0].target "data": must be an absolute path`},
		{"root target", func(s *ServiceSpec) { s.Mounts = []Mount{{Type: MountVolume, Source: "v", Target: "/"}} }, `cannot mount over the container's root`},
		{"relative bind source", func(s *ServiceSpec) { s.Mounts = []Mount{{Type: MountBind, Source: "srv", Target: "/d"}} }, `spec.mounts[0].source "srv": a bind mount's source must be an absolute path`},
		{"bad volume name", func(s *ServiceSpec) { s.Mounts = []Mount{{Type: MountVolume, Source: "a/b", Target: "/d"}} }, `spec.mounts[0].source "a/b": character '/'`},
		{"duplicate target", func(s *ServiceSpec) {
			s.Mounts = []Mount{{Type: MountVolume, Source: "a", Target: "/d"}, {Type: MountVolume, Source: "b", Target: "/d/"}}
		}, `spec.mounts[1].target "/d/": already the target of spec.mounts[0]`},
		{"env no equals", func(s *ServiceSpec) { s.Env = []string{"A=1", "FOO"} }, `spec.env[1] "FOO": want KEY=VALUE`},
		{"env empty key", func(s *ServiceSpec) { s.Env = []string{"=1"} }, `spec.env[0] "=1": empty variable name`},
		{"env space key", func(s *ServiceSpec) { s.Env = []string{"A B=1"} }, `white space`},
		{"empty label key", func(s *ServiceSpec) { s.Labels = map[string]string{"": "x"} }, `spec.labels "": empty label key`},
		{"depends bad condition", func(s *ServiceSpec) { s.DependsOn = []Dependency{{Service: "db", Condition: "ready"}} }, `spec.depends_on[0].condition "ready": want service_started`},
		{"depends self", func(s *ServiceSpec) { s.DependsOn = []Dependency{{Service: "web", Condition: DependStarted}} }, `cannot depend on itself`},
		{"depends twice", func(s *ServiceSpec) {
			s.DependsOn = []Dependency{{Service: "db", Condition: DependStarted}, {Service: "db", Condition: DependHealthy}}
		}, `spec.depends_on[1].service "db": listed twice`},
		{"healthcheck bad test", func(s *ServiceSpec) { s.Healthcheck = &Healthcheck{Test: []string{"curl"}} }, `spec.healthcheck.test[0] "curl"`},
		{"healthcheck no command", func(s *ServiceSpec) { s.Healthcheck = &Healthcheck{Test: []string{"CMD"}} }, `CMD needs a command`},
		{"healthcheck negative interval", func(s *ServiceSpec) { s.Healthcheck = &Healthcheck{Interval: -1} }, `spec.healthcheck.interval "-1ns": must not be negative`},
		{"healthcheck negative timeout", func(s *ServiceSpec) { s.Healthcheck = &Healthcheck{Timeout: -Duration(time.Second)} }, `spec.healthcheck.timeout "-1s": must not be negative`},
		{"healthcheck interval too short", func(s *ServiceSpec) { s.Healthcheck = &Healthcheck{Interval: 500} }, `spec.healthcheck.interval "500ns": shorter than 1ms`},
		{"healthcheck interval too long", func(s *ServiceSpec) { s.Healthcheck = &Healthcheck{Interval: MaxDuration + 1} }, `spec.healthcheck.interval "24h0m0.000000001s": longer than 24h0m0s`},
		{"healthcheck retries over the limit", func(s *ServiceSpec) { s.Healthcheck = &Healthcheck{Retries: MaxHealthRetries + 1} }, `spec.healthcheck.retries "101": more than 100`},
		{"healthcheck negative start period", func(s *ServiceSpec) { s.Healthcheck = &Healthcheck{StartPeriod: -Duration(time.Second)} }, `spec.healthcheck.start_period "-1s": must not be negative`},
		{"image digest not sha256", func(s *ServiceSpec) { s.ImageDigest = "md5:abc" }, `spec.image_digest "md5:abc": want sha256:`},
		{"negative grace", func(s *ServiceSpec) { s.StopGracePeriod = -1 }, `spec.stop_grace_period "-1ns"`},
		{"relative dir", func(s *ServiceSpec) { s.Dir = "app" }, `spec.dir "app": the working directory must be an absolute path`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			tt.mutate(s)
			checkErr(t, ValidateServiceSpec(s), tt.wantErr)
		})
	}
}

// TestValidateServiceSpecReportsAll checks that one call reports every
// problem and that the result wraps ErrInvalid.
func TestValidateServiceSpecReportsAll(t *testing.T) {
	s := validSpec()
	s.Name = "-x"
	s.Replicas = 2
	s.Mode = ModeGlobal
	s.Env = []string{"NOPE"}
	err := ValidateServiceSpec(s)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("errors.Is(%v, ErrInvalid) = false", err)
	}
	for _, want := range []string{`spec.name "-x"`, `spec.replicas "2"`, `spec.env[0] "NOPE"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "spec.name" {
		t.Errorf("errors.As FieldError = %+v, want the spec.name error first", fe)
	}
	s.Placement.Constraints = []string{"zone"}
	if err := ValidateServiceSpec(s); !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrInvalidPlacement) {
		t.Errorf("bad constraint: %v, want ErrInvalid and ErrInvalidPlacement", err)
	}
	if err := ValidateServiceSpec(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil spec: %v, want ErrInvalid", err)
	}
}

func checkErr(t *testing.T, err error, wantErr string) {
	t.Helper()
	if wantErr == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("error = %v, want one containing %q", err, wantErr)
	}
}

// FuzzValidateImage checks that ValidateImage never panics, explains every
// rejection, and accepts only references whose repository path is lowercase
// and whose normalized form is itself accepted.
func FuzzValidateImage(f *testing.F) {
	for _, s := range []string{"busybox", "busybox:1.36", "registry.lab:5000/a/b:c", "a@sha256:" + strings.Repeat("0", 64), "Busy", "", ":", "a//b", "Reg/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := ValidateImage(s); err != nil {
			if !strings.Contains(err.Error(), "image reference") {
				t.Fatalf("ValidateImage(%q) error %q does not say what was wrong", s, err)
			}
			return
		}
		if strings.ContainsAny(s, " \t\n") {
			t.Fatalf("ValidateImage accepted white space in %q", s)
		}
		named, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			t.Fatalf("accepted %q but it does not parse: %v", s, err)
		}
		if p := reference.Path(named); strings.ToLower(p) != p {
			t.Fatalf("accepted %q with upper-case path %q", s, p)
		}
		if err := ValidateImage(named.String()); err != nil {
			t.Fatalf("normalized form %q of %q rejected: %v", named.String(), s, err)
		}
	})
}
