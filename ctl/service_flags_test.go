package ctl

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// defaultSpec is what `service create --name NAME IMAGE` sends.
func defaultSpec(name, image string) *api.ServiceSpec {
	return &api.ServiceSpec{
		Name: name, Image: image, Mode: api.ModeReplicated, Replicas: 1,
		Placement:       api.Placement{Strategy: api.StrategySpread},
		RestartPolicy:   api.RestartPolicy{Condition: api.RestartAny, Delay: api.Duration(5 * time.Second)},
		StopGracePeriod: api.Duration(10 * time.Second),
		UpdateConfig:    api.UpdateConfig{Parallelism: 1, FailureAction: "pause", Order: "stop-first", Monitor: api.DefaultMonitor},
		RollbackConfig:  api.UpdateConfig{Parallelism: 1, FailureAction: "pause", Order: "stop-first", Monitor: api.DefaultMonitor},
	}
}

func TestCreateFlagsToSpec(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want func(s *api.ServiceSpec)
	}{
		{"defaults", []string{"--name", "api", "busybox"}, func(s *api.ServiceSpec) {}},
		{"command and args", []string{"--name", "api", "busybox", "sleep", "--not-a-flag", "10"}, func(s *api.ServiceSpec) {
			s.Args = []string{"sleep", "--not-a-flag", "10"}
		}},
		{"global", []string{"--name", "api", "--mode", "global", "busybox"}, func(s *api.ServiceSpec) {
			s.Mode, s.Replicas = api.ModeGlobal, 0
		}},
		{"zero replicas", []string{"--name", "api", "--replicas", "0", "busybox"}, func(s *api.ServiceSpec) { s.Replicas = 0 }},
		{"health check", []string{"--name", "api", "--health-cmd", "wget -q -O- localhost", "--health-interval", "2s",
			"--health-timeout", "1s", "--health-retries", "5", "--health-start-period", "10s", "busybox"}, func(s *api.ServiceSpec) {
			s.Healthcheck = &api.Healthcheck{Test: []string{"CMD-SHELL", "wget -q -O- localhost"}, Interval: api.Duration(2 * time.Second),
				Timeout: api.Duration(time.Second), Retries: 5, StartPeriod: api.Duration(10 * time.Second)}
		}},
		{"no health check", []string{"--name", "api", "--no-healthcheck", "busybox"}, func(s *api.ServiceSpec) {
			s.Healthcheck = &api.Healthcheck{Test: []string{"NONE"}}
		}},
		{"rollout", []string{
			"--name", "api", "--replicas", "6", "--update-parallelism", "0", "--update-delay", "1s", "--update-order", "start-first",
			"--update-monitor", "10s", "--update-max-failure-ratio", "0.25", "--update-failure-action", "rollback",
			"--update-canary", "1", "--update-auto-promote",
			"--rollback-parallelism", "3", "--rollback-order", "start-first", "--rollback-failure-action", "continue", "busybox",
		}, func(s *api.ServiceSpec) {
			s.Replicas = 6
			s.UpdateConfig = api.UpdateConfig{Parallelism: 0, Delay: api.Duration(time.Second), Order: "start-first",
				Monitor: api.Duration(10 * time.Second), MaxFailureRatio: 0.25, FailureAction: "rollback", Canary: 1, AutoPromote: true}
			s.RollbackConfig = api.UpdateConfig{Parallelism: 3, Order: "start-first", Monitor: api.DefaultMonitor, FailureAction: "continue"}
		}},
		{"everything", []string{
			"--name", "stack_api", "--replicas", "4", "-e", "A=1", "--env", "B=x=y", "--env", "A=2",
			"--label", "tier=front", "-l", "flag",
			"--reserve-cpu", "0.5", "--reserve-memory", "64M", "--limit-cpu", "1.25", "--limit-memory", "128Mi",
			"--constraint", "node.labels.zone==a", "--constraint", "node.role!=manager",
			"--placement-pref", "spread=node.labels.zone", "--replicas-max-per-node", "2", "--placement-strategy", "binpack",
			"--restart-condition", "on-failure", "--restart-delay", "1s", "--restart-max-attempts", "3", "--restart-window", "1m",
			"--mount", "type=bind,source=/srv,target=/data,readonly", "--mount", "src=cache,dst=/cache",
			"--stop-grace-period", "30s", "--entrypoint", "/bin/sh -c", "--workdir", "/app", "--user", "1000:1000",
			"registry.lab:5000/team/api:v2", "echo", "hi",
		}, func(s *api.ServiceSpec) {
			s.Name, s.Image, s.Replicas = "stack_api", "registry.lab:5000/team/api:v2", 4
			s.Args = []string{"echo", "hi"}
			s.Env = []string{"B=x=y", "A=2"}
			s.Labels = map[string]string{"tier": "front", "flag": ""}
			s.Resources = api.ResourceRequirements{
				Reservations: api.Resources{NanoCPUs: 500_000_000, MemoryBytes: 64 << 20},
				Limits:       api.Resources{NanoCPUs: 1_250_000_000, MemoryBytes: 128 << 20},
			}
			s.Placement = api.Placement{
				Constraints: []string{"node.labels.zone==a", "node.role!=manager"}, Preferences: []string{"spread=node.labels.zone"},
				MaxReplicasPerNode: 2, Strategy: api.StrategyBinpack,
			}
			s.RestartPolicy = api.RestartPolicy{Condition: api.RestartOnFailure, Delay: api.Duration(time.Second), MaxAttempts: 3, Window: api.Duration(time.Minute)}
			s.Mounts = []api.Mount{{Type: "bind", Source: "/srv", Target: "/data", ReadOnly: true}, {Type: "volume", Source: "cache", Target: "/cache"}}
			s.StopGracePeriod = api.Duration(30 * time.Second)
			s.Command = []string{"/bin/sh", "-c"}
			s.Dir, s.User = "/app", "1000:1000"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeControl()
			host := serveTCP(t, f)
			mustRun(t, host, append([]string{"service", "create", "-d"}, tt.args...)...)
			reqs := sent[*shoalpb.CreateServiceRequest](f)
			if len(reqs) != 1 {
				t.Fatalf("fake got %d create requests, want 1", len(reqs))
			}
			got := shoalpb.ToServiceSpec(reqs[0].GetSpec())
			want := defaultSpec("api", "busybox")
			tt.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("spec sent:\n%+v\nwant:\n%+v", got, want)
			}
		})
	}
}

// TestCreateBadFlags checks that bad input is refused before anything is
// sent, with an error naming the flag and the value.
func TestCreateBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"memory unit", []string{"--reserve-memory", "12Q"}, []string{`--reserve-memory "12Q": unknown unit "Q" (use K, M, G or Ki, Mi, Gi)`}},
		{"negative cpu", []string{"--reserve-cpu=-1"}, []string{`--reserve-cpu "-1": must not be negative`}},
		{"cpu precision", []string{"--limit-cpu", "0.0000000001"}, []string{`--limit-cpu "0.0000000001": too precise`}},
		{"limit below reservation", []string{"--limit-memory", "64M", "--reserve-memory", "128M"},
			[]string{`spec.resources.limits.memory_bytes (--limit-memory) "67108864": limit (64MiB) is below the reservation (128MiB)`}},
		{"replicas not a number", []string{"--replicas", "x"}, []string{`--replicas "x": want a whole number`}},
		{"replicas with global", []string{"--mode", "global", "--replicas", "3"}, []string{`--replicas "3": not allowed with --mode global`}},
		{"mode", []string{"--mode", "daemon"}, []string{`--mode "daemon": want replicated or global`}},
		{"env", []string{"--env", "FOO"}, []string{`--env "FOO": want KEY=VALUE`}},
		{"label", []string{"--label", "=x"}, []string{`--label "=x": empty label key`}},
		{"constraint", []string{"--constraint", "zone=a"}, []string{`--constraint "zone=a": invalid placement constraint "zone=a": no operator`}},
		{"preference", []string{"--placement-pref", "pack=node.labels.zone"}, []string{`--placement-pref "pack=node.labels.zone": invalid placement preference "pack=node.labels.zone": unknown kind "pack"`}},
		{"strategy", []string{"--placement-strategy", "random"}, []string{`--placement-strategy "random": want spread or binpack`}},
		{"restart condition", []string{"--restart-condition", "always"}, []string{`--restart-condition "always": want any, on-failure or none`}},
		{"restart delay", []string{"--restart-delay", "5x"}, []string{`--restart-delay "5x": want a duration`}},
		{"negative delay", []string{"--restart-delay=-5s"}, []string{`--restart-delay "-5s": must not be negative`}},
		{"mount type", []string{"--mount", "type=npipe,target=/x"}, []string{`--mount "type=npipe,target=/x": type "npipe": want bind, volume or tmpfs`}},
		{"mount bind source", []string{"--mount", "type=bind,source=rel,target=/x"}, []string{`--mount "type=bind,source=rel,target=/x": source "rel"`}},
		{"mount no target", []string{"--mount", "source=v"}, []string{`--mount "source=v": no target= given`}},
		{"failure ratio", []string{"--update-max-failure-ratio", "1.5"}, []string{`spec.update_config.max_failure_ratio (--update-max-failure-ratio) "1.5": must be between 0 and 1`}},
		{"update order", []string{"--update-order", "sideways"}, []string{`spec.update_config.order (--update-order) "sideways": want stop-first or start-first`}},
		{"update action", []string{"--update-failure-action", "panic"}, []string{`spec.update_config.failure_action (--update-failure-action) "panic"`}},
		{"rollback action", []string{"--rollback-failure-action", "rollback"}, []string{`spec.rollback_config.failure_action (--rollback-failure-action) "rollback": a rollback cannot roll back`}},
		{"update monitor", []string{"--update-monitor=-1s"}, []string{`--update-monitor "-1s": must not be negative`}},
		{"canary over replicas", []string{"--replicas", "2", "--update-canary", "2"}, []string{`spec.update_config.canary (--update-canary) "2": must be less than the replicas (2)`}},
		{"mount key", []string{"--mount", "target=/x,bogus=1"}, []string{`--mount "target=/x,bogus=1": unknown key "bogus"`}},
		{"mount volume name", []string{"--mount", "source=a/b,target=/x"}, []string{`spec.mounts[0].source (--mount) "a/b"`}},
		{"workdir", []string{"--workdir", "rel"}, []string{`--workdir "rel": must be an absolute path`}},
		{"several at once", []string{"--env", "FOO", "--mode", "daemon"}, []string{`--env "FOO"`, `--mode "daemon"`}},
		{"negative health retries", []string{"--health-cmd", "true", "--health-retries=-1"}, []string{`--health-retries "-1": must not be negative`}},
		{"negative health interval", []string{"--health-interval=-1s"}, []string{`--health-interval "-1s": must not be negative`}},
		{"health interval too short", []string{"--health-cmd", "true", "--health-interval", "500ns"},
			[]string{`spec.healthcheck.interval (--health-interval) "500ns": shorter than 1ms`}},
		{"health retries over the limit", []string{"--health-cmd", "true", "--health-retries", "101"},
			[]string{`spec.healthcheck.retries (--health-retries) "101": more than 100`}},
		{"no healthcheck with a command", []string{"--no-healthcheck", "--health-cmd", "true"}, []string{`--no-healthcheck "true": conflicts with the --health-* flags`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeControl()
			host := serveTCP(t, f)
			args := append(append([]string{"service", "create", "--name", "api"}, tt.args...), "busybox")
			mustFail(t, host, args, tt.want...)
			if n := len(sent[*shoalpb.CreateServiceRequest](f)); n != 0 {
				t.Errorf("a rejected command sent %d requests", n)
			}
		})
	}
}

func TestCreateBadNameAndImage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"space in name", []string{"--name", "my web", "busybox"}, `--name "my web": character ' ' at 2 not allowed`},
		{"no name", []string{"busybox"}, `--name "": empty name`},
		{"bad image", []string{"--name", "web", "Busy"}, `IMAGE "Busy": not a valid image reference`},
		{"no image", []string{"--name", "web"}, `an IMAGE is required`},
		{"unknown flag", []string{"--bogus", "busybox"}, `unknown flag: --bogus`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeControl()
			host := serveTCP(t, f)
			mustFail(t, host, append([]string{"service", "create"}, tt.args...), tt.want)
			if n := len(sent[*shoalpb.CreateServiceRequest](f)); n != 0 {
				t.Errorf("a rejected command sent %d requests", n)
			}
		})
	}
}

func TestUpdateFlagsToSpec(t *testing.T) {
	f := newFakeControl()
	host := serveTCP(t, f)
	before := shoalpb.ToServiceSpec(f.services[0].GetSpec())
	mustRun(t, host, "service", "update", "-d",
		"--image", "busybox:1.37", "--replicas", "5", "--args", "httpd -f -p 80",
		"--env-add", "A=2", "--env-rm", "LOG", "--label-add", "x=y", "--label-rm", "tier",
		"--constraint-add", "node.role==worker", "--constraint-rm", "node.labels.zone==a",
		"--placement-pref-add", "spread=node.labels.zone",
		"--mount-add", "type=volume,source=d,target=/d", "--limit-memory", "256M", "--restart-condition", "none",
		"web")
	reqs := sent[*shoalpb.UpdateServiceRequest](f)
	if len(reqs) != 1 {
		t.Fatalf("fake got %d update requests, want 1", len(reqs))
	}
	if reqs[0].GetExpectedVersion() != 2 || reqs[0].GetService() != "svcweb0123456789abcdef" {
		t.Errorf("update of %q at version %d, want svcweb0123456789abcdef at 2", reqs[0].GetService(), reqs[0].GetExpectedVersion())
	}
	want := before.Clone()
	want.Image, want.Replicas, want.Args = "busybox:1.37", 5, []string{"httpd", "-f", "-p", "80"}
	want.Env = []string{"A=2"}
	want.Labels = map[string]string{"x": "y"}
	want.Placement.Constraints = []string{"node.role==worker"}
	want.Placement.Preferences = []string{"spread=node.labels.zone"}
	want.Mounts = []api.Mount{{Type: "volume", Source: "d", Target: "/d"}}
	want.Resources.Limits.MemoryBytes = 256 << 20
	want.RestartPolicy.Condition = api.RestartNone
	want.RollbackConfig = defaultSpec("", "").RollbackConfig // filled in as the manager fills it
	got := shoalpb.ToServiceSpec(reqs[0].GetSpec())
	if !reflect.DeepEqual(got, want) {
		t.Errorf("spec sent:\n%+v\nwant:\n%+v", got, want)
	}
}

func TestUpdateRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fakeControl)
		args  []string
		want  []string
	}{
		{"nothing to update", nil, []string{"web"}, []string{"nothing to update"}},
		{"dry run alone", nil, []string{"--dry-run", "web"}, []string{"nothing to update"}},
		{"scale a global service", nil, []string{"--replicas", "3", "agent"}, []string{`--replicas "3": service "agent" is global`}},
		{"bad image", nil, []string{"--image", "Bad", "web"}, []string{`--image "Bad"`}},
		{"limit below reservation", nil, []string{"--limit-memory", "32M", "web"}, []string{`(--limit-memory) "33554432": limit (32MiB) is below the reservation (64MiB)`}},
		{"unknown service", nil, []string{"--replicas", "3", "nope"}, []string{`service "nope" not found`}},
		{"version conflict", func(f *fakeControl) { f.raceUpdate = true }, []string{"--replicas", "3", "web"},
			[]string{`service "web" changed while it was being updated (read at version 2)`, "version conflict", "run the command again"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeControl()
			if tt.setup != nil {
				tt.setup(f)
			}
			host := serveTCP(t, f)
			mustFail(t, host, append([]string{"service", "update"}, tt.args...), tt.want...)
			if f.services[0].GetSpec().GetReplicas() != 3 || f.services[0].GetSpec().GetImage() != "busybox:1.36" {
				t.Errorf("a refused update changed the service: %v", f.services[0].GetSpec())
			}
		})
	}
}

func TestScaleArgs(t *testing.T) {
	f := newFakeControl()
	host := serveTCP(t, f)
	mustFail(t, host, []string{"service", "scale", "web=x", "=3", "web"},
		`SERVICE=REPLICAS "web=x": replicas "x": want a whole number`,
		`SERVICE=REPLICAS "=3": want a service name`, `SERVICE=REPLICAS "web": want a service name`)
	if n := len(sent[*shoalpb.ScaleServiceRequest](f)); n != 0 {
		t.Errorf("bad arguments sent %d requests", n)
	}
	r := mustFail(t, host, []string{"service", "scale", "-d", "agent=2", "web=0"}, `service "agent" is global`)
	if r.stdout != "web scaled to 0\n" {
		t.Errorf("stdout = %q, want the one service that scaled", r.stdout)
	}
}

func TestParseMount(t *testing.T) {
	tests := []struct {
		in      string
		want    api.Mount
		wantErr string
	}{
		{"type=bind,source=/a,target=/b", api.Mount{Type: "bind", Source: "/a", Target: "/b"}, ""},
		{"type=volume,src=v,dst=/b,ro", api.Mount{Type: "volume", Source: "v", Target: "/b", ReadOnly: true}, ""},
		{"source=v,destination=/b,readonly=false", api.Mount{Type: "volume", Source: "v", Target: "/b"}, ""},
		{"target=/b,readonly=maybe", api.Mount{}, `readonly "maybe"`},
		{"type=bind,target=/b", api.Mount{}, `source ""`},
		{"target=b", api.Mount{}, `target "b" must be an absolute path`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseMount(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseMount(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseMount(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestUpdateHealthFlags: update changes only the health fields given, and
// --image asks the managers to resolve the tag again.
func TestUpdateHealthFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		want      func(s *api.ServiceSpec)
		noResolve bool
	}{
		{"add a check", []string{"--health-cmd", "test -e /ok", "--health-retries", "2"}, func(s *api.ServiceSpec) {
			s.Healthcheck = &api.Healthcheck{Test: []string{"CMD-SHELL", "test -e /ok"}, Retries: 2}
		}, false},
		{"turn checks off", []string{"--no-healthcheck"}, func(s *api.ServiceSpec) {
			s.Healthcheck = &api.Healthcheck{Test: []string{"NONE"}}
		}, false},
		{"new image, kept tag", []string{"--image", "busybox:1.37", "--no-resolve-image"}, func(s *api.ServiceSpec) {
			s.Image, s.ImageDigest = "busybox:1.37", ""
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeControl()
			host := serveTCP(t, f)
			before := shoalpb.ToServiceSpec(f.services[0].GetSpec())
			mustRun(t, host, append(append([]string{"service", "update", "-d"}, tt.args...), "web")...)
			reqs := sent[*shoalpb.UpdateServiceRequest](f)
			if len(reqs) != 1 {
				t.Fatalf("fake got %d update requests, want 1", len(reqs))
			}
			want := before.Clone()
			tt.want(want)
			want.RollbackConfig = defaultSpec("", "").RollbackConfig // filled in as the manager fills it
			if got := shoalpb.ToServiceSpec(reqs[0].GetSpec()); !reflect.DeepEqual(got, want) {
				t.Errorf("spec sent:\n%+v\nwant:\n%+v", got, want)
			}
			if reqs[0].GetNoResolveImage() != tt.noResolve {
				t.Errorf("no_resolve_image = %v, want %v", reqs[0].GetNoResolveImage(), tt.noResolve)
			}
		})
	}
}
