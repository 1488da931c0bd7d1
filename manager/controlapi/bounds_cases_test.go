package controlapi_test

import (
	"context"
	"fmt"
	"math"
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// specField is one field of a spec with its bad values: each edit turns a
// valid spec into one with that field negative, zero, huge, overflowing,
// oversized or malformed (those that apply to the field), and parts is
// what the refusal must say.
type specField struct {
	name  string
	edit  func(*shoalpb.ServiceSpec)
	parts []string
}

func big(n int) string { return strings.Repeat("a", n) }

func list(n int, v string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func dur(d int64) *durationpb.Duration { return &durationpb.Duration{Seconds: d} }

// specCases sends every bad spec field through create, dry-run create and
// update, and a few that only an update or a cycle can show.
func specCases() []badCase {
	var out []badCase
	for _, f := range specFields() {
		spec := validSpec("fresh")
		f.edit(spec)
		out = append(out,
			badCase{name: "create/" + f.name, parts: f.parts, barrier: true, call: func(ctx context.Context, cl shoalpb.ControlClient) error {
				_, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: spec})
				return err
			}},
			badCase{name: "dry-run/" + f.name, parts: f.parts, barrier: true, call: func(ctx context.Context, cl shoalpb.ControlClient) error {
				_, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: spec, DryRun: true})
				return err
			}})
		if !createOnly[f.name] && !strings.HasPrefix(f.name, "name ") {
			upd := validSpec("web")
			f.edit(upd)
			out = append(out, badCase{name: "update/" + f.name, parts: f.parts, barrier: true, call: func(ctx context.Context, cl shoalpb.ControlClient) error {
				_, err := cl.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: "web", Spec: upd})
				return err
			}})
		}
	}
	cycle := validSpec("web")
	cycle.DependsOn = []*shoalpb.Dependency{{Service: "db"}}
	renamed := validSpec("other")
	global := validSpec("web")
	global.Mode, global.Replicas = "global", 0
	return append(out,
		updateCase("depends_on cycle", cycle, "spec.depends_on", "web -> db -> web"),
		updateCase("rename", renamed, "spec.name", `"other"`, "cannot be renamed"),
		updateCase("mode change", global, "spec.mode", `"global"`, "cannot change"),
		badCase{name: "create/no spec", parts: []string{"spec: missing"}, call: func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{})
			return err
		}},
		badCase{name: "update/no spec", parts: []string{"spec: missing"}, call: func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: "web"})
			return err
		}},
	)
}

// createOnly are the fields an update of web cannot show alone: there a
// changed mode is refused for the change.
var createOnly = map[string]bool{"replicas in global mode": true, "mode malformed": true}

func updateCase(name string, spec *shoalpb.ServiceSpec, parts ...string) badCase {
	return badCase{name: "update/" + name, parts: parts, barrier: true, call: func(ctx context.Context, cl shoalpb.ControlClient) error {
		_, err := cl.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: "web", Spec: spec})
		return err
	}}
}

// specFields lists every field of a spec with its bad values.
func specFields() []specField {
	fields := []specField{
		{"name empty", func(s *shoalpb.ServiceSpec) { s.Name = "" }, []string{"spec.name", "empty name"}},
		{"name oversize", func(s *shoalpb.ServiceSpec) { s.Name = big(64) }, []string{"spec.name", "at most 63"}},
		{"name huge", func(s *shoalpb.ServiceSpec) { s.Name = big(1 << 20) }, []string{"spec.name", "(1048576 bytes)", "at most 63"}},
		{"name malformed", func(s *shoalpb.ServiceSpec) { s.Name = "Web Server" }, []string{"spec.name", `"Web Server"`}},
		{"image empty", func(s *shoalpb.ServiceSpec) { s.Image = "" }, []string{"spec.image", "empty image"}},
		{"image oversize", func(s *shoalpb.ServiceSpec) { s.Image = big(513) }, []string{"spec.image", "at most 512"}},
		{"image malformed", func(s *shoalpb.ServiceSpec) { s.Image = "Bad::Ref" }, []string{"spec.image", `"Bad::Ref"`}},
		{"mode malformed", func(s *shoalpb.ServiceSpec) { s.Mode = "sharded" }, []string{"spec.mode", `"sharded"`, "replicated or global"}},
		{"replicas overflow", func(s *shoalpb.ServiceSpec) { s.Replicas = math.MaxUint64 }, []string{"spec.replicas", "18446744073709551615", "100000"}},
		{"replicas huge", func(s *shoalpb.ServiceSpec) { s.Replicas = 100_001 }, []string{"spec.replicas", `"100001"`, "100000"}},
		{"replicas over max-replicas", func(s *shoalpb.ServiceSpec) { s.Replicas = 10_001 }, []string{"spec.replicas", `"10001"`, "max-replicas, 10000"}},
		{"replicas in global mode", func(s *shoalpb.ServiceSpec) { s.Mode, s.Replicas = "global", 2 }, []string{"spec.replicas", "must be 0 in global mode"}},
		{"dir malformed", func(s *shoalpb.ServiceSpec) { s.Dir = "relative" }, []string{"spec.dir", `"relative"`, "absolute"}},
		{"dir oversize", func(s *shoalpb.ServiceSpec) { s.Dir = "/" + big(4096) }, []string{"spec.dir", "at most 4096"}},
		{"user oversize", func(s *shoalpb.ServiceSpec) { s.User = big(257) }, []string{"spec.user", "at most 256"}},
		{"user NUL", func(s *shoalpb.ServiceSpec) { s.User = "root\x00" }, []string{"spec.user", "NUL"}},
		{"spec oversize in total", func(s *shoalpb.ServiceSpec) { s.Env = list(200, "K="+big(2000)) }, []string{"spec", "bytes", "more than 262144"}},
	}
	for _, l := range []struct {
		field string
		set   func(*shoalpb.ServiceSpec, []string)
	}{
		{"spec.command", func(s *shoalpb.ServiceSpec, v []string) { s.Command = v }},
		{"spec.args", func(s *shoalpb.ServiceSpec, v []string) { s.Args = v }},
		{"spec.env", func(s *shoalpb.ServiceSpec, v []string) { s.Env = v }},
		{"spec.healthcheck.test", func(s *shoalpb.ServiceSpec, v []string) { s.Healthcheck = &shoalpb.Healthcheck{Test: v} }},
	} {
		entry := "CMD"
		if l.field == "spec.env" {
			entry = "A=1"
		}
		fields = append(fields,
			specField{l.field + " oversize list", func(s *shoalpb.ServiceSpec) { l.set(s, list(1025, entry)) }, []string{l.field, "1025 entries", "at most 1024"}},
			specField{l.field + " oversize entry", func(s *shoalpb.ServiceSpec) { l.set(s, []string{"CMD", "A=" + big(32<<10)}) }, []string{l.field, "at most 32768"}},
			specField{l.field + " NUL", func(s *shoalpb.ServiceSpec) { l.set(s, []string{"CMD", "A=\x00"}) }, []string{l.field + "[1]", "NUL"}},
		)
	}
	fields = append(fields, specField{"spec.env malformed", func(s *shoalpb.ServiceSpec) { s.Env = []string{"NOVALUE"} }, []string{"spec.env[0]", `"NOVALUE"`, "KEY=VALUE"}})
	fields = append(fields, labelFields()...)
	fields = append(fields, resourceFields()...)
	fields = append(fields, durationFields()...)
	fields = append(fields, policyFields()...)
	fields = append(fields, rolloutFields()...)
	fields = append(fields, containerFields()...)
	return fields
}

func labelFields() []specField {
	many := map[string]string{}
	for i := range 257 {
		many[fmt.Sprint("k", i)] = "v"
	}
	return []specField{
		{"labels oversize list", func(s *shoalpb.ServiceSpec) { s.Labels = many }, []string{"spec.labels", "257 entries", "at most 256"}},
		{"labels empty key", func(s *shoalpb.ServiceSpec) { s.Labels = map[string]string{" ": "v"} }, []string{"spec.labels", "empty label key"}},
		{"labels oversize key", func(s *shoalpb.ServiceSpec) { s.Labels = map[string]string{big(257): "v"} }, []string{"spec.labels", "at most 256"}},
		{"labels malformed key", func(s *shoalpb.ServiceSpec) { s.Labels = map[string]string{"a\nb": "v"} }, []string{"spec.labels", "control character"}},
		{"labels oversize value", func(s *shoalpb.ServiceSpec) { s.Labels = map[string]string{"k": big(4097)} }, []string{"spec.labels[k]", "at most 4096"}},
	}
}

func resourceFields() []specField {
	var out []specField
	for _, r := range []struct {
		field string
		set   func(*shoalpb.ServiceSpec, *shoalpb.Resources)
	}{
		{"spec.resources.reservations", func(s *shoalpb.ServiceSpec, r *shoalpb.Resources) { s.Reservations = r }},
		{"spec.resources.limits", func(s *shoalpb.ServiceSpec, r *shoalpb.Resources) { s.Limits = r }},
	} {
		out = append(out,
			specField{r.field + ".nano_cpus negative", func(s *shoalpb.ServiceSpec) { r.set(s, &shoalpb.Resources{NanoCpus: -1}) }, []string{r.field + ".nano_cpus", "negative"}},
			specField{r.field + ".nano_cpus overflow", func(s *shoalpb.ServiceSpec) { r.set(s, &shoalpb.Resources{NanoCpus: math.MinInt64}) }, []string{r.field + ".nano_cpus", `"-9223372036.854775808"`, "negative"}},
			specField{r.field + ".nano_cpus huge", func(s *shoalpb.ServiceSpec) { r.set(s, &shoalpb.Resources{NanoCpus: math.MaxInt64}) }, []string{r.field + ".nano_cpus", "largest value, 4096"}},
			specField{r.field + ".memory_bytes negative", func(s *shoalpb.ServiceSpec) { r.set(s, &shoalpb.Resources{MemoryBytes: -1}) }, []string{r.field + ".memory_bytes", `"-1"`, "negative"}},
			specField{r.field + ".memory_bytes huge", func(s *shoalpb.ServiceSpec) { r.set(s, &shoalpb.Resources{MemoryBytes: math.MaxInt64}) }, []string{r.field + ".memory_bytes", "9223372036854775807", "70368744177664"}},
		)
	}
	return append(out,
		specField{"limits below the smallest", func(s *shoalpb.ServiceSpec) { s.Limits = &shoalpb.Resources{MemoryBytes: 1} }, []string{"spec.resources.limits.memory_bytes", "smallest limit"}},
		specField{"limit below reservation", func(s *shoalpb.ServiceSpec) {
			s.Reservations, s.Limits = &shoalpb.Resources{NanoCpus: 2e9}, &shoalpb.Resources{NanoCpus: 1e9}
		}, []string{"spec.resources.limits.nano_cpus", "below the reservation"}},
	)
}

func durationFields() []specField {
	var out []specField
	for _, d := range []struct {
		field string
		max   string
		set   func(*shoalpb.ServiceSpec, *durationpb.Duration)
	}{
		{"spec.stop_grace_period", "24h0m0s", func(s *shoalpb.ServiceSpec, d *durationpb.Duration) { s.StopGracePeriod = d }},
		{"spec.restart_policy.delay", "24h0m0s", func(s *shoalpb.ServiceSpec, d *durationpb.Duration) {
			s.RestartPolicy = &shoalpb.RestartPolicy{Delay: d}
		}},
		{"spec.restart_policy.window", "720h0m0s", func(s *shoalpb.ServiceSpec, d *durationpb.Duration) {
			s.RestartPolicy = &shoalpb.RestartPolicy{Window: d}
		}},
		{"spec.update_config.delay", "24h0m0s", func(s *shoalpb.ServiceSpec, d *durationpb.Duration) { s.UpdateConfig = &shoalpb.UpdateConfig{Delay: d} }},
		{"spec.update_config.monitor", "24h0m0s", func(s *shoalpb.ServiceSpec, d *durationpb.Duration) {
			s.UpdateConfig = &shoalpb.UpdateConfig{Monitor: d}
		}},
		{"spec.healthcheck.interval", "24h0m0s", func(s *shoalpb.ServiceSpec, d *durationpb.Duration) {
			s.Healthcheck = &shoalpb.Healthcheck{Interval: d}
		}},
		{"spec.healthcheck.timeout", "24h0m0s", func(s *shoalpb.ServiceSpec, d *durationpb.Duration) { s.Healthcheck = &shoalpb.Healthcheck{Timeout: d} }},
		{"spec.healthcheck.start_period", "24h0m0s", func(s *shoalpb.ServiceSpec, d *durationpb.Duration) {
			s.Healthcheck = &shoalpb.Healthcheck{StartPeriod: d}
		}},
	} {
		out = append(out,
			specField{d.field + " negative", func(s *shoalpb.ServiceSpec) { d.set(s, dur(-1)) }, []string{d.field, `"-1s"`, "negative"}},
			specField{d.field + " huge", func(s *shoalpb.ServiceSpec) { d.set(s, dur(100*24*3600)) }, []string{d.field, `"2400h0m0s"`, d.max}},
			specField{d.field + " overflow", func(s *shoalpb.ServiceSpec) { d.set(s, dur(math.MaxInt64)) }, []string{d.field, d.max}},
			specField{d.field + " malformed", func(s *shoalpb.ServiceSpec) { d.set(s, &durationpb.Duration{Seconds: 1, Nanos: -5}) }, []string{d.field, `"1s -5ns"`}},
		)
	}
	return append(out,
		specField{"spec.healthcheck.interval too short", func(s *shoalpb.ServiceSpec) {
			s.Healthcheck = &shoalpb.Healthcheck{Interval: &durationpb.Duration{Nanos: 1}}
		}, []string{"spec.healthcheck.interval", `"1ns"`, "1ms"}},
	)
}

func policyFields() []specField {
	return []specField{
		{"constraints oversize list", func(s *shoalpb.ServiceSpec) {
			s.Placement = &shoalpb.Placement{Constraints: list(65, "node.role==worker")}
		}, []string{"spec.placement.constraints", "65 entries", "at most 64"}},
		{"constraint oversize", func(s *shoalpb.ServiceSpec) {
			s.Placement = &shoalpb.Placement{Constraints: []string{"node.labels.a==" + big(1024)}}
		}, []string{"spec.placement.constraints[0]", "at most 1024"}},
		{"constraint malformed", func(s *shoalpb.ServiceSpec) {
			s.Placement = &shoalpb.Placement{Constraints: []string{"node.colour=red"}}
		}, []string{"spec.placement.constraints[0]", `"node.colour=red"`}},
		{"preferences oversize list", func(s *shoalpb.ServiceSpec) {
			s.Placement = &shoalpb.Placement{Preferences: list(9, "spread=node.labels.zone")}
		}, []string{"spec.placement.preferences", "9 entries", "at most 8"}},
		{"preference malformed", func(s *shoalpb.ServiceSpec) { s.Placement = &shoalpb.Placement{Preferences: []string{"pack=x"}} }, []string{"spec.placement.preferences[0]", `"pack=x"`}},
		{"max_replicas_per_node overflow", func(s *shoalpb.ServiceSpec) { s.Placement = &shoalpb.Placement{MaxReplicasPerNode: math.MaxUint64} }, []string{"spec.placement.max_replicas_per_node", "18446744073709551615", "100000"}},
		{"strategy malformed", func(s *shoalpb.ServiceSpec) { s.Placement = &shoalpb.Placement{Strategy: "random"} }, []string{"spec.placement.strategy", `"random"`}},
		{"restart condition malformed", func(s *shoalpb.ServiceSpec) { s.RestartPolicy = &shoalpb.RestartPolicy{Condition: "sometimes"} }, []string{"spec.restart_policy.condition", `"sometimes"`}},
		{"restart max_attempts overflow", func(s *shoalpb.ServiceSpec) { s.RestartPolicy = &shoalpb.RestartPolicy{MaxAttempts: math.MaxUint64} }, []string{"spec.restart_policy.max_attempts", "18446744073709551615", "more than 100"}},
		{"update parallelism overflow", func(s *shoalpb.ServiceSpec) { s.UpdateConfig = &shoalpb.UpdateConfig{Parallelism: math.MaxUint64} }, []string{"spec.update_config.parallelism", "18446744073709551615", "100000"}},
		{"update failure_action malformed", func(s *shoalpb.ServiceSpec) { s.UpdateConfig = &shoalpb.UpdateConfig{FailureAction: "explode"} }, []string{"spec.update_config.failure_action", `"explode"`}},
		{"update order malformed", func(s *shoalpb.ServiceSpec) { s.UpdateConfig = &shoalpb.UpdateConfig{Order: "random"} }, []string{"spec.update_config.order", `"random"`}},
		{"healthcheck retries overflow", func(s *shoalpb.ServiceSpec) { s.Healthcheck = &shoalpb.Healthcheck{Retries: math.MaxUint64} }, []string{"spec.healthcheck.retries", "18446744073709551615", "more than 100"}},
		{"healthcheck test malformed", func(s *shoalpb.ServiceSpec) { s.Healthcheck = &shoalpb.Healthcheck{Test: []string{"RUN", "x"}} }, []string{"spec.healthcheck.test[0]", `"RUN"`}},
		{"mounts oversize list", func(s *shoalpb.ServiceSpec) {
			for i := range 65 {
				s.Mounts = append(s.Mounts, &shoalpb.Mount{Type: "volume", Source: "v", Target: fmt.Sprint("/m", i)})
			}
		}, []string{"spec.mounts", "65 entries", "at most 64"}},
		{"mount type malformed", func(s *shoalpb.ServiceSpec) { s.Mounts = []*shoalpb.Mount{{Type: "nfs", Source: "v", Target: "/m"}} }, []string{"spec.mounts[0].type", `"nfs"`}},
		{"mount target malformed", func(s *shoalpb.ServiceSpec) { s.Mounts = []*shoalpb.Mount{{Type: "volume", Source: "v", Target: "m"}} }, []string{"spec.mounts[0].target", `"m"`}},
		{"mount target oversize", func(s *shoalpb.ServiceSpec) {
			s.Mounts = []*shoalpb.Mount{{Type: "volume", Source: "v", Target: "/" + big(4096)}}
		}, []string{"spec.mounts[0].target", "at most 4096"}},
		{"mount source oversize", func(s *shoalpb.ServiceSpec) {
			s.Mounts = []*shoalpb.Mount{{Type: "bind", Source: "/" + big(4096), Target: "/m"}}
		}, []string{"spec.mounts[0].source", "at most 4096"}},
		{"depends_on oversize list", func(s *shoalpb.ServiceSpec) {
			for i := range 65 {
				s.DependsOn = append(s.DependsOn, &shoalpb.Dependency{Service: fmt.Sprint("s", i)})
			}
		}, []string{"spec.depends_on", "65 entries", "at most 64"}},
		{"depends_on unknown service", func(s *shoalpb.ServiceSpec) { s.DependsOn = []*shoalpb.Dependency{{Service: "nosuch"}} }, []string{"spec.depends_on[0].service", `"nosuch"`, "no such service"}},
		{"depends_on malformed condition", func(s *shoalpb.ServiceSpec) {
			s.DependsOn = []*shoalpb.Dependency{{Service: "web", Condition: "soon"}}
		}, []string{"spec.depends_on[0].condition", `"soon"`}},
	}
}
