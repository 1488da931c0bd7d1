package api

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"time"

	"github.com/distribution/reference"
)

// ErrInvalid is wrapped by every validation error, so the gRPC edge can map
// any of them to InvalidArgument with errors.Is.
var ErrInvalid = errors.New("invalid")

// FieldError says which field (a spec path like "spec.replicas" or a flag
// like "--reserve-memory") held which value, and what is wrong with it.
type FieldError struct {
	Field string
	Value string
	Err   error
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s %q: %v", e.Field, e.Value, e.Err) }

// Unwrap exposes both ErrInvalid and the cause.
func (e *FieldError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// fieldErr builds a FieldError whose cause is a formatted message.
func fieldErr(field, value, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Value: value, Err: fmt.Errorf(format, args...)}
}

// Defaults filled in by ApplyDefaults.
const (
	DefaultRestartDelay    = Duration(5 * time.Second)
	DefaultStopGracePeriod = Duration(10 * time.Second)
	DefaultParallelism     = 1
)

// Limits below these would not let a container start at all (runc needs a
// few MiB; the kernel's CFS quota has a 1 ms floor per 100 ms period).
const (
	MinMemoryLimit = 6 << 20
	MinCPULimit    = nanoPerCPU / 100
)

// ApplyDefaults fills in what an operator may leave out. A zero value means
// "not set", so a group whose key field is empty is treated as unset as a
// whole: with no mode, Replicas 0 becomes 1 (an explicit "replicated" with 0
// replicas stays 0, which scales a service down); with no restart condition,
// a zero delay becomes 5 s. Clients that mean zero set the key field too, as
// shoalctl does.
func ApplyDefaults(s *ServiceSpec) {
	if s.Mode == "" {
		s.Mode = ModeReplicated
		if s.Replicas == 0 {
			s.Replicas = 1
		}
	}
	if s.RestartPolicy.Condition == "" {
		s.RestartPolicy.Condition = RestartAny
		if s.RestartPolicy.Delay == 0 {
			s.RestartPolicy.Delay = DefaultRestartDelay
		}
	}
	if s.Placement.Strategy == "" {
		s.Placement.Strategy = StrategySpread
	}
	if s.StopGracePeriod == 0 {
		s.StopGracePeriod = DefaultStopGracePeriod
	}
	if s.UpdateConfig.Parallelism == 0 {
		s.UpdateConfig.Parallelism = DefaultParallelism
	}
	if s.UpdateConfig.FailureAction == "" {
		s.UpdateConfig.FailureAction = "pause"
	}
	if s.UpdateConfig.Order == "" {
		s.UpdateConfig.Order = "stop-first"
	}
	for i := range s.DependsOn {
		if s.DependsOn[i].Condition == "" {
			s.DependsOn[i].Condition = DependStarted
		}
	}
}

// ValidateServiceName checks a service name. Names are DNS labels (1-63
// characters of a-z, 0-9 and '-', not starting or ending with '-') so that
// tasks can be found by name, with one addition: '_' is allowed inside,
// because stacks name their services STACK_SERVICE as docker does.
func ValidateServiceName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > 63:
		return fmt.Errorf("%d characters, at most 63 allowed", len(name))
	}
	for i, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
			return fmt.Errorf("character %q at %d not allowed (use a-z, 0-9, '-' and '_')", r, i)
		}
	}
	if first, last := name[0], name[len(name)-1]; first == '-' || first == '_' || last == '-' || last == '_' {
		return errors.New("must start and end with a letter or digit")
	}
	return nil
}

// ValidateImage checks an image reference the way docker reads it
// ("busybox", "registry:5000/team/app:1.2", "app@sha256:…").
func ValidateImage(ref string) error {
	if ref == "" {
		return errors.New("empty image reference")
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return fmt.Errorf("not a valid image reference: %w", err)
	}
	return nil
}

// ValidateServiceSpec checks a spec after ApplyDefaults. It reports every
// problem it finds, each naming the field and its value; errors.Is(err,
// ErrInvalid) holds for the result.
func ValidateServiceSpec(s *ServiceSpec) error {
	if s == nil {
		return fieldErr("spec", "", "missing")
	}
	var errs []error
	add := func(e error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	if err := ValidateServiceName(s.Name); err != nil {
		add(&FieldError{Field: "spec.name", Value: s.Name, Err: err})
	}
	if err := ValidateImage(s.Image); err != nil {
		add(&FieldError{Field: "spec.image", Value: s.Image, Err: err})
	}
	add(validateMode(s))
	errs = append(errs, validateResources(s.Resources)...)
	errs = append(errs, validatePlacement(s.Placement)...)
	errs = append(errs, validateRestart(s.RestartPolicy)...)
	errs = append(errs, validateUpdate(s.UpdateConfig)...)
	errs = append(errs, validateMounts(s.Mounts)...)
	errs = append(errs, validateEnv(s.Env)...)
	errs = append(errs, validateLabels("spec.labels", s.Labels)...)
	errs = append(errs, validateDependsOn(s.Name, s.DependsOn)...)
	errs = append(errs, validateHealthcheck(s.Healthcheck)...)
	add(nonNegative("spec.stop_grace_period", s.StopGracePeriod))
	if s.Dir != "" && !path.IsAbs(s.Dir) {
		add(fieldErr("spec.dir", s.Dir, "the working directory must be an absolute path"))
	}
	return errors.Join(errs...)
}

func validateMode(s *ServiceSpec) error {
	switch s.Mode {
	case ModeReplicated:
		return nil
	case ModeGlobal:
		if s.Replicas != 0 {
			return fieldErr("spec.replicas", strconv.FormatUint(s.Replicas, 10), "must be 0 in global mode (one task runs on every node)")
		}
		return nil
	}
	return fieldErr("spec.mode", string(s.Mode), "want replicated or global")
}

func validateResources(r ResourceRequirements) []error {
	var errs []error
	cpu := func(field string, v int64) {
		if v < 0 {
			errs = append(errs, fieldErr(field, FormatCPUs(v), "must not be negative"))
		}
	}
	mem := func(field string, v int64) {
		if v < 0 {
			errs = append(errs, fieldErr(field, strconv.FormatInt(v, 10), "must not be negative"))
		}
	}
	const res, lim = "spec.resources.reservations.", "spec.resources.limits."
	cpu(res+"nano_cpus", r.Reservations.NanoCPUs)
	cpu(lim+"nano_cpus", r.Limits.NanoCPUs)
	mem(res+"memory_bytes", r.Reservations.MemoryBytes)
	mem(lim+"memory_bytes", r.Limits.MemoryBytes)
	if l := r.Limits.NanoCPUs; l > 0 && l < MinCPULimit {
		errs = append(errs, fieldErr(lim+"nano_cpus", FormatCPUs(l), "below the smallest limit, %s CPUs", FormatCPUs(MinCPULimit)))
	}
	if l := r.Limits.MemoryBytes; l > 0 && l < MinMemoryLimit {
		errs = append(errs, fieldErr(lim+"memory_bytes", strconv.FormatInt(l, 10), "below the smallest limit, %s", FormatMemory(MinMemoryLimit)))
	}
	if l, v := r.Limits.NanoCPUs, r.Reservations.NanoCPUs; l > 0 && l < v {
		errs = append(errs, fieldErr(lim+"nano_cpus", FormatCPUs(l), "limit is below the reservation (%s CPUs)", FormatCPUs(v)))
	}
	if l, v := r.Limits.MemoryBytes, r.Reservations.MemoryBytes; l > 0 && l < v {
		errs = append(errs, fieldErr(lim+"memory_bytes", strconv.FormatInt(l, 10), "limit (%s) is below the reservation (%s)", FormatMemory(l), FormatMemory(v)))
	}
	return errs
}

func validatePlacement(p Placement) []error {
	var errs []error
	for i, c := range p.Constraints {
		if err := ValidateConstraint(c); err != nil {
			errs = append(errs, &FieldError{Field: fmt.Sprintf("spec.placement.constraints[%d]", i), Value: c, Err: err})
		}
	}
	for i, pref := range p.Preferences {
		if err := ValidatePreference(pref); err != nil {
			errs = append(errs, &FieldError{Field: fmt.Sprintf("spec.placement.preferences[%d]", i), Value: pref, Err: err})
		}
	}
	switch p.Strategy {
	case StrategySpread, StrategyBinpack:
	default:
		errs = append(errs, fieldErr("spec.placement.strategy", string(p.Strategy), "want spread or binpack"))
	}
	return errs
}

// ValidateConstraint checks one placement constraint such as
// "node.labels.zone==a" with ParseConstraint, the parser the scheduler
// uses, so that shoalctl, the manager and the scheduler accept one grammar.
func ValidateConstraint(c string) error {
	_, err := ParseConstraint(c)
	return err
}

// ValidatePreference checks "spread=node.labels.NAME", the only kind of
// placement preference there is (as in swarm), with ParsePreference.
func ValidatePreference(p string) error {
	_, err := ParsePreference(p)
	return err
}

func validateRestart(r RestartPolicy) []error {
	var errs []error
	switch r.Condition {
	case RestartAny, RestartOnFailure, RestartNone:
	default:
		errs = append(errs, fieldErr("spec.restart_policy.condition", string(r.Condition), "want any, on-failure or none"))
	}
	for _, e := range []error{
		nonNegative("spec.restart_policy.delay", r.Delay),
		nonNegative("spec.restart_policy.window", r.Window),
	} {
		if e != nil {
			errs = append(errs, e)
		}
	}
	return errs
}

func validateUpdate(u UpdateConfig) []error {
	var errs []error
	if u.Parallelism == 0 {
		errs = append(errs, fieldErr("spec.update_config.parallelism", "0", "must be at least 1"))
	}
	switch u.FailureAction {
	case "", "pause", "continue", "rollback":
	default:
		errs = append(errs, fieldErr("spec.update_config.failure_action", u.FailureAction, "want pause, continue or rollback"))
	}
	switch u.Order {
	case "", "stop-first", "start-first":
	default:
		errs = append(errs, fieldErr("spec.update_config.order", u.Order, "want stop-first or start-first"))
	}
	for _, e := range []error{
		nonNegative("spec.update_config.delay", u.Delay),
		nonNegative("spec.update_config.monitor", u.Monitor),
	} {
		if e != nil {
			errs = append(errs, e)
		}
	}
	return errs
}

func nonNegative(field string, d Duration) error {
	if d < 0 {
		return fieldErr(field, d.Std().String(), "must not be negative")
	}
	return nil
}
