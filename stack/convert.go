package stack

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/shoal-sched/shoal/api"
)

// converter turns compose services into shoal specs, collecting the
// warnings about values shoal handles differently.
type converter struct {
	stack    string
	project  *types.Project
	warnings []Warning
}

func (c *converter) warn(svc, key, format string, args ...any) {
	c.warnings = append(c.warnings, Warning{Service: svc, Key: key, Message: fmt.Sprintf(format, args...)})
}

// keyError names the compose service and key behind a bad value.
func keyError(svc, key, value string, err error) error {
	return &api.FieldError{Field: fmt.Sprintf("services.%s.%s", svc, key), Value: value, Err: err}
}

// service converts one compose service. The spec it returns has the
// defaults filled in and has passed the manager's validation.
func (c *converter) service(s types.ServiceConfig) (*api.ServiceSpec, error) {
	spec := &api.ServiceSpec{
		Name:    ServiceName(c.stack, s.Name),
		Image:   s.Image,
		Command: nilIfEmpty(s.Entrypoint),
		Args:    nilIfEmpty(s.Command),
		Env:     c.env(s),
		Dir:     s.WorkingDir,
		User:    s.User,
		Labels:  c.labels(s),
	}
	var errs []error
	if err := api.ValidateServiceName(spec.Name); err != nil {
		errs = append(errs, keyError(s.Name, "(name)", spec.Name,
			fmt.Errorf("the service would be named %q: %w", spec.Name, err)))
	}
	if s.Image == "" {
		errs = append(errs, keyError(s.Name, "image", "", errors.New("an image is required (shoal does not build images)")))
	}
	if s.StopGracePeriod != nil {
		spec.StopGracePeriod = api.Duration(*s.StopGracePeriod)
	}
	spec.Healthcheck = healthcheck(s.HealthCheck)
	errs = append(errs, c.deploy(s, spec)...)
	spec.Mounts = c.mounts(s)
	errs = append(errs, c.container(s, spec)...)
	spec.DependsOn = c.dependsOn(s)
	errs = append(errs, c.serviceNetworks(s, spec)...)
	errs = append(errs, c.serviceSecrets(s, spec)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	api.ApplyDefaults(spec)
	if err := api.ValidateServiceSpec(spec); err != nil {
		return nil, composeErrors(s.Name, err)
	}
	return spec, nil
}

// env lists the service's environment (environment and env_file, already
// merged by compose-go) as sorted KEY=VALUE entries.
func (c *converter) env(s types.ServiceConfig) []string {
	var env []string
	for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
		v := s.Environment[k]
		if v == nil {
			c.warn(s.Name, "environment."+k, "has no value and is not set where the stack is deployed; left out")
			continue
		}
		env = append(env, k+"="+*v)
	}
	return env
}

// labels are the service's labels: deploy.labels, and the stack's mark.
// Compose's labels are the containers' (see container).
func (c *converter) labels(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	if s.Deploy != nil {
		maps.Copy(out, s.Deploy.Labels)
	}
	if v, ok := out[api.LabelStack]; ok && v != c.stack {
		c.warn(s.Name, "labels."+api.LabelStack, "is set by shoal to the stack name %q; the value %q is replaced", c.stack, v)
	}
	out[api.LabelStack] = c.stack
	return out
}

func healthcheck(h *types.HealthCheckConfig) *api.Healthcheck {
	if h == nil {
		return nil
	}
	out := &api.Healthcheck{Test: nilIfEmpty(h.Test)}
	if h.Disable {
		out.Test = []string{"NONE"}
	}
	if h.Interval != nil {
		out.Interval = api.Duration(*h.Interval)
	}
	if h.Timeout != nil {
		out.Timeout = api.Duration(*h.Timeout)
	}
	if h.Retries != nil {
		out.Retries = *h.Retries
	}
	if h.StartPeriod != nil {
		out.StartPeriod = api.Duration(*h.StartPeriod)
	}
	return out
}

// deploy converts the deploy section: mode, replicas, resources,
// placement, restart and update policies.
func (c *converter) deploy(s types.ServiceConfig, spec *api.ServiceSpec) []error {
	spec.Mode, spec.Replicas = api.ModeReplicated, 1
	spec.RestartPolicy = api.RestartPolicy{Condition: api.RestartAny, Delay: api.DefaultRestartDelay}
	d := s.Deploy
	if d == nil {
		return nil
	}
	var errs []error
	switch d.Mode {
	case "", "replicated":
		if d.Replicas != nil {
			if *d.Replicas < 0 {
				errs = append(errs, keyError(s.Name, "deploy.replicas", strconv.Itoa(*d.Replicas), errors.New("must not be negative")))
			} else {
				spec.Replicas = uint64(*d.Replicas)
			}
		}
	case "global":
		spec.Mode, spec.Replicas = api.ModeGlobal, 0
		if d.Replicas != nil {
			errs = append(errs, keyError(s.Name, "deploy.replicas", strconv.Itoa(*d.Replicas),
				errors.New("not allowed with deploy.mode global (one task runs on every node)")))
		}
	default:
		errs = append(errs, keyError(s.Name, "deploy.mode", d.Mode,
			errors.New("want replicated or global (shoal runs no jobs yet)")))
	}
	res, err := resources(s.Name, d.Resources)
	errs = append(errs, err...)
	spec.Resources = res
	spec.Placement = api.Placement{
		Constraints:        slices.Clone(d.Placement.Constraints),
		MaxReplicasPerNode: d.Placement.MaxReplicas,
	}
	for _, p := range d.Placement.Preferences {
		spec.Placement.Preferences = append(spec.Placement.Preferences, "spread="+p.Spread)
	}
	if rp := d.RestartPolicy; rp != nil {
		spec.RestartPolicy = restartPolicy(rp)
	}
	if uc := d.UpdateConfig; uc != nil {
		spec.UpdateConfig = updateConfig(uc)
	}
	if rc := d.RollbackConfig; rc != nil {
		spec.RollbackConfig = updateConfig(rc)
	}
	return errs
}

// updateConfig converts deploy.update_config or deploy.rollback_config;
// what it leaves out takes swarm's defaults (parallelism 1, pause, a 5 s
// monitor window, stop-first). A parallelism given as 0 stays 0: all at
// once.
func updateConfig(uc *types.UpdateConfig) api.UpdateConfig {
	out := api.UpdateConfig{
		Parallelism: api.DefaultParallelism, Delay: api.Duration(uc.Delay), FailureAction: uc.FailureAction,
		Monitor: api.Duration(uc.Monitor), Order: uc.Order, MaxFailureRatio: ratio64(uc.MaxFailureRatio),
	}
	if uc.Parallelism != nil {
		out.Parallelism = *uc.Parallelism
	}
	if out.FailureAction == "" {
		out.FailureAction = api.FailurePause
	}
	if out.Monitor == 0 {
		out.Monitor = api.DefaultMonitor
	}
	return out
}

// ratio64 widens compose's float32 ratio to the float64 of the spec the
// way it was written (0.2, not 0.20000000298).
func ratio64(r float32) float64 {
	v, err := strconv.ParseFloat(strconv.FormatFloat(float64(r), 'g', -1, 32), 64)
	if err != nil {
		return float64(r)
	}
	return v
}

// restartPolicy converts deploy.restart_policy; what it leaves out takes
// swarm's defaults (condition any, delay 5s).
func restartPolicy(rp *types.RestartPolicy) api.RestartPolicy {
	out := api.RestartPolicy{Condition: api.RestartCondition(rp.Condition), Delay: api.DefaultRestartDelay}
	if out.Condition == "" {
		out.Condition = api.RestartAny
	}
	if rp.Delay != nil {
		out.Delay = api.Duration(*rp.Delay)
	}
	if rp.MaxAttempts != nil {
		out.MaxAttempts = *rp.MaxAttempts
	}
	if rp.Window != nil {
		out.Window = api.Duration(*rp.Window)
	}
	return out
}

// resources converts deploy.resources. CPUs go through the same parser as
// --limit-cpu, from the shortest text of compose-go's float32, so that
// "0.1" is exactly 100000000 NanoCPUs.
func resources(svc string, r types.Resources) (api.ResourceRequirements, []error) {
	var out api.ResourceRequirements
	var errs []error
	conv := func(key string, from *types.Resource, to *api.Resources) {
		if from == nil {
			return
		}
		if from.NanoCPUs != 0 {
			text := strconv.FormatFloat(float64(from.NanoCPUs), 'f', -1, 32)
			n, err := api.ParseCPUs(text)
			if err != nil {
				errs = append(errs, keyError(svc, key+".cpus", text, err))
			}
			to.NanoCPUs = n
		}
		to.MemoryBytes = int64(from.MemoryBytes)
	}
	conv("deploy.resources.limits", r.Limits, &out.Limits)
	conv("deploy.resources.reservations", r.Reservations, &out.Reservations)
	return out, errs
}

// mounts converts volumes: bind mounts and named volumes. Named volumes
// take the name compose gives them (STACK_KEY unless the top-level
// volume names itself or is external).
func (c *converter) mounts(s types.ServiceConfig) []api.Mount {
	var out []api.Mount
	for i, v := range s.Volumes {
		key := fmt.Sprintf("volumes[%d]", i)
		switch v.Type {
		case types.VolumeTypeBind:
			out = append(out, api.Mount{Type: api.MountBind, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
		case types.VolumeTypeVolume:
			if v.Source == "" {
				c.warn(s.Name, key, "anonymous volume at %s is not supported by shoal yet (give it a name); left out", v.Target)
				continue
			}
			name := v.Source
			if vol, ok := c.project.Volumes[v.Source]; ok && vol.Name != "" {
				name = vol.Name
			}
			out = append(out, api.Mount{Type: api.MountVolume, Source: name, Target: v.Target, ReadOnly: v.ReadOnly})
		case types.VolumeTypeTmpfs:
			out = append(out, tmpfsVolume(v))
		default:
			c.warn(s.Name, key, "volume type %s (at %s) is not supported by shoal yet; left out", v.Type, v.Target)
		}
	}
	return out
}

// dependsOn converts depends_on to dependencies on the stack's services,
// sorted by name. An optional dependency (required: false) on a service
// the profiles left out is dropped, as compose does.
func (c *converter) dependsOn(s types.ServiceConfig) []api.Dependency {
	var out []api.Dependency
	for _, dep := range slices.Sorted(maps.Keys(s.DependsOn)) {
		d := s.DependsOn[dep]
		if _, ok := c.project.Services[dep]; !ok && !d.Required {
			continue
		}
		cond := api.DependencyCondition(d.Condition)
		if cond == "" {
			cond = api.DependStarted
		}
		if cond == api.DependHealthy && !hasHealthcheck(c.project.Services[dep]) {
			c.warn(s.Name, "depends_on."+dep, "condition service_healthy: %q has no healthcheck here, so it turns healthy only if its image has a HEALTHCHECK", dep)
		}
		out = append(out, api.Dependency{Service: ServiceName(c.stack, dep), Condition: cond})
	}
	return out
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// composeErrors renames the spec fields in the manager's validation errors
// to the compose keys that set them.
func composeErrors(svc string, err error) error {
	var errs []error
	for _, e := range unjoin(err) {
		var fe *api.FieldError
		if errors.As(e, &fe) {
			e = &api.FieldError{Field: "services." + svc + "." + composeKey(fe.Field), Value: fe.Value, Err: fe.Err}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

func unjoin(err error) []error {
	if _, ok := err.(*api.FieldError); ok {
		return []error{err}
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// specKeys maps spec field prefixes to compose keys.
var specKeys = []struct{ spec, compose string }{
	{"spec.resources.limits.nano_cpus", "deploy.resources.limits.cpus"},
	{"spec.resources.limits.memory_bytes", "deploy.resources.limits.memory"},
	{"spec.resources.reservations.nano_cpus", "deploy.resources.reservations.cpus"},
	{"spec.resources.reservations.memory_bytes", "deploy.resources.reservations.memory"},
	{"spec.placement.max_replicas_per_node", "deploy.placement.max_replicas_per_node"},
	{"spec.placement.", "deploy.placement."},
	{"spec.restart_policy.", "deploy.restart_policy."},
	{"spec.update_config.", "deploy.update_config."},
	{"spec.rollback_config.", "deploy.rollback_config."},
	{"spec.replicas", "deploy.replicas"},
	{"spec.mode", "deploy.mode"},
	{"spec.mounts", "volumes"},
	{"spec.env", "environment"},
	{"spec.dir", "working_dir"},
	{"spec.command", "entrypoint"},
	{"spec.container.labels", "labels"},
	{"spec.container.groups", "group_add"},
	{"spec.container.log_max_size", "logging.options.max-size"},
	{"spec.container.log_max_files", "logging.options.max-file"},
	{"spec.container.", ""},
	{"spec.args", "command"},
	{"spec.", ""},
}

func composeKey(field string) string {
	for _, k := range specKeys {
		if rest, ok := strings.CutPrefix(field, k.spec); ok {
			return k.compose + rest
		}
	}
	return field
}

// hasHealthcheck reports whether a compose service defines a check that
// runs (not disabled, with a test).
func hasHealthcheck(s types.ServiceConfig) bool {
	h := s.HealthCheck
	return h != nil && !h.Disable && len(h.Test) > 0 && h.Test[0] != "NONE"
}
