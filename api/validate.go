package api

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
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

// Error names the field and quotes the value, cut short when it is long.
func (e *FieldError) Error() string {
	if v, cut := shownValue(e.Value); cut {
		return fmt.Sprintf("%s %q… (%d bytes): %v", e.Field, v, len(e.Value), e.Err)
	}
	return fmt.Sprintf("%s %q: %v", e.Field, e.Value, e.Err)
}

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
	applyUpdateDefaults(&s.UpdateConfig)
	applyUpdateDefaults(&s.RollbackConfig)
	for i := range s.DependsOn {
		if s.DependsOn[i].Condition == "" {
			s.DependsOn[i].Condition = DependStarted
		}
	}
}

// ValidateServiceName checks a service name as swarmkit and compose accept
// them: 1-63 characters, a letter or digit first, then letters (either
// case), digits, '-', '_' and '.', ending with a letter or digit so that
// the name stays usable as a DNS name. '_' is needed because stacks name
// their services STACK_SERVICE as docker does. Names are unique without
// regard to case (the store's name index folds it, as swarmkit's does), so
// "Web" and "web" cannot both exist.
func ValidateServiceName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > MaxNameLen:
		return fmt.Errorf("%d characters, at most %d allowed", len(name), MaxNameLen)
	}
	for i, r := range name {
		if !isNameRune(r) {
			return fmt.Errorf("character %q at %d not allowed (use letters, digits, '-', '_' and '.')", r, i)
		}
	}
	if !isAlnum(rune(name[0])) || !isAlnum(rune(name[len(name)-1])) {
		return errors.New("must start and end with a letter or digit")
	}
	return nil
}

func isAlnum(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}

func isNameRune(r rune) bool { return isAlnum(r) || r == '-' || r == '_' || r == '.' }

// ValidateImage checks an image reference the way docker reads it
// ("busybox", "registry:5000/team/app:1.2", "app@sha256:…").
func ValidateImage(ref string) error {
	switch {
	case ref == "":
		return errors.New("empty image reference")
	case len(ref) > MaxImageLen:
		return fmt.Errorf("%d bytes, at most %d allowed", len(ref), MaxImageLen)
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return fmt.Errorf("not a valid image reference: %w", err)
	}
	return nil
}

// ValidateServiceSpec checks a spec after ApplyDefaults against the rules
// and limits that need nothing but the spec (ValidateReplicas and
// ValidateDependencyGraph need the cluster's state). It reports the
// problems it finds, each naming the field, its value and the limit;
// errors.Is(err, ErrInvalid) holds for the result.
func ValidateServiceSpec(s *ServiceSpec) error {
	if s == nil {
		return fieldErr("spec", "", "missing")
	}
	var errs []error
	add := func(e ...error) {
		for _, err := range e {
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := ValidateServiceName(s.Name); err != nil {
		add(&FieldError{Field: "spec.name", Value: s.Name, Err: err})
	}
	if err := ValidateImage(s.Image); err != nil {
		add(&FieldError{Field: "spec.image", Value: s.Image, Err: err})
	}
	add(validateMode(s))
	add(checkStrings("spec.command", s.Command, MaxArgs, MaxArgLen)...)
	add(checkStrings("spec.args", s.Args, MaxArgs, MaxArgLen)...)
	add(validateResources(s.Resources)...)
	add(validatePlacement(s.Placement)...)
	add(validateRestart(s.RestartPolicy)...)
	add(validateUpdate("spec.update_config", s.UpdateConfig, s)...)
	add(validateUpdate("spec.rollback_config", s.RollbackConfig, s)...)
	add(validateMounts(s.Mounts)...)
	add(validateEnv(s.Env)...)
	add(validateLabels("spec.labels", s.Labels)...)
	add(validateDependsOn(s.Name, s.DependsOn)...)
	add(validateHealthcheck(s.Healthcheck)...)
	add(validateNetworking(s)...)
	add(validateImageDigest(s.ImageDigest))
	add(validateSecretRefs(KindSecret, s.Secrets)...)
	add(validateSecretRefs(KindConfig, s.Configs)...)
	add(checkDuration("spec.stop_grace_period", s.StopGracePeriod, MaxDuration))
	add(validatePath("spec.dir", s.Dir, "the working directory must be an absolute path"))
	add(checkString("spec.user", s.User, MaxUserLen))
	// Every service uses the node's network for now.
	add(ValidateContainerOptions(s.Container, s.Name, true)...)
	// Every part has its own bound (lists are counted before their entries
	// are looked at), so a single huge value is named by its field; the
	// total bounds many values of a size each field allows.
	if len(errs) == 0 {
		if n := specBytes(s); n > MaxSpecBytes {
			add(fieldErr("spec", strconv.Itoa(n)+" bytes", "its strings add up to more than %d bytes", MaxSpecBytes))
		}
	}
	return joinErrors(errs)
}

// joinErrors joins the first maxErrors of errs and counts the rest.
func joinErrors(errs []error) error {
	if len(errs) > maxErrors {
		more := fmt.Errorf("%w: %d more problems not shown", ErrInvalid, len(errs)-maxErrors)
		errs = append(errs[:maxErrors:maxErrors], more)
	}
	return errors.Join(errs...)
}

// specBytes adds up the lengths of every string in s.
func specBytes(s *ServiceSpec) int {
	n := containerBytes(s.Container) + len(s.Name) + len(s.Image) + len(s.Dir) + len(s.User) + len(s.Mode) +
		len(s.Placement.Strategy) + len(s.RestartPolicy.Condition) +
		len(s.UpdateConfig.FailureAction) + len(s.UpdateConfig.Order)
	for _, list := range [][]string{s.Command, s.Args, s.Env, s.Placement.Constraints, s.Placement.Preferences} {
		for _, v := range list {
			n += len(v)
		}
	}
	for k, v := range s.Labels {
		n += len(k) + len(v)
	}
	for _, m := range s.Mounts {
		n += len(m.Type) + len(m.Source) + len(m.Target)
	}
	for _, d := range s.DependsOn {
		n += len(d.Service) + len(d.Condition)
	}
	if s.Healthcheck != nil {
		for _, v := range s.Healthcheck.Test {
			n += len(v)
		}
	}
	return n
}

// checkStrings checks a list of strings: how many, how long each, and no
// NUL (which no argument of a process can hold).
func checkStrings(field string, list []string, maxN, maxLen int) []error {
	if err := CheckCount(field, len(list), maxN); err != nil {
		return []error{err}
	}
	var errs []error
	for i, v := range list {
		if err := checkString(fmt.Sprintf("%s[%d]", field, i), v, maxLen); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// checkString checks one string's length and that it holds no NUL.
func checkString(field, v string, maxLen int) error {
	if err := CheckLen(field, v, maxLen); err != nil {
		return err
	}
	if strings.ContainsRune(v, 0) {
		return fieldErr(field, v, "contains NUL")
	}
	return nil
}

// validatePath checks an optional absolute path in the container.
func validatePath(field, p, notAbs string) error {
	if p == "" {
		return nil
	}
	if err := checkString(field, p, MaxPathLen); err != nil {
		return err
	}
	if !path.IsAbs(p) {
		return fieldErr(field, p, "%s", notAbs)
	}
	return nil
}

func validateMode(s *ServiceSpec) error {
	replicas := strconv.FormatUint(s.Replicas, 10)
	switch s.Mode {
	case ModeReplicated:
		if s.Replicas > MaxReplicasCeiling {
			return fieldErr("spec.replicas", replicas, "more than %d, the most any cluster allows", MaxReplicasCeiling)
		}
		return nil
	case ModeGlobal:
		if s.Replicas != 0 {
			return fieldErr("spec.replicas", replicas, "must be 0 in global mode (one task runs on every node)")
		}
		return nil
	}
	return fieldErr("spec.mode", string(s.Mode), "want replicated or global")
}

func validateResources(r ResourceRequirements) []error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	memText := func(v int64) string { return strconv.FormatInt(v, 10) }
	const res, lim = "spec.resources.reservations.", "spec.resources.limits."
	add(checkRange(res+"nano_cpus", r.Reservations.NanoCPUs, 0, MaxNanoCPUs, FormatCPUs))
	add(checkRange(lim+"nano_cpus", r.Limits.NanoCPUs, 0, MaxNanoCPUs, FormatCPUs))
	add(checkRange(res+"memory_bytes", r.Reservations.MemoryBytes, 0, MaxMemoryBytes, memText))
	add(checkRange(lim+"memory_bytes", r.Limits.MemoryBytes, 0, MaxMemoryBytes, memText))
	if len(errs) > 0 {
		return errs
	}
	if l := r.Limits.NanoCPUs; l > 0 && l < MinCPULimit {
		add(fieldErr(lim+"nano_cpus", FormatCPUs(l), "below the smallest limit, %s CPUs", FormatCPUs(MinCPULimit)))
	}
	if l := r.Limits.MemoryBytes; l > 0 && l < MinMemoryLimit {
		add(fieldErr(lim+"memory_bytes", memText(l), "below the smallest limit, %s", FormatMemory(MinMemoryLimit)))
	}
	if l, v := r.Limits.NanoCPUs, r.Reservations.NanoCPUs; l > 0 && l < v {
		add(fieldErr(lim+"nano_cpus", FormatCPUs(l), "limit is below the reservation (%s CPUs)", FormatCPUs(v)))
	}
	if l, v := r.Limits.MemoryBytes, r.Reservations.MemoryBytes; l > 0 && l < v {
		add(fieldErr(lim+"memory_bytes", memText(l), "limit (%s) is below the reservation (%s)", FormatMemory(l), FormatMemory(v)))
	}
	return errs
}

func validatePlacement(p Placement) []error {
	var errs []error
	errs = append(errs, validateRules("spec.placement.constraints", p.Constraints, MaxConstraints, ValidateConstraint)...)
	errs = append(errs, validateRules("spec.placement.preferences", p.Preferences, MaxPreferences, ValidatePreference)...)
	if p.MaxReplicasPerNode > MaxReplicasCeiling {
		errs = append(errs, fieldErr("spec.placement.max_replicas_per_node", strconv.FormatUint(p.MaxReplicasPerNode, 10),
			"more than %d, the most replicas a service may have", MaxReplicasCeiling))
	}
	switch p.Strategy {
	case StrategySpread, StrategyBinpack:
	default:
		errs = append(errs, fieldErr("spec.placement.strategy", string(p.Strategy), "want spread or binpack"))
	}
	return errs
}

// validateRules checks a list of constraints or preferences: how many, how
// long each (before it is parsed), and its grammar.
func validateRules(field string, rules []string, maxN int, parse func(string) error) []error {
	if err := CheckCount(field, len(rules), maxN); err != nil {
		return []error{err}
	}
	var errs []error
	for i, c := range rules {
		f := fmt.Sprintf("%s[%d]", field, i)
		if err := CheckLen(f, c, MaxConstraintLen); err != nil {
			errs = append(errs, err)
		} else if err := parse(c); err != nil {
			errs = append(errs, &FieldError{Field: f, Value: c, Err: err})
		}
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
	if r.MaxAttempts > MaxRestartAttempts {
		errs = append(errs, fieldErr("spec.restart_policy.max_attempts", strconv.FormatUint(r.MaxAttempts, 10),
			"more than %d (0 means no limit)", MaxRestartAttempts))
	}
	return appendErrs(errs,
		checkDuration("spec.restart_policy.delay", r.Delay, MaxDuration),
		checkDuration("spec.restart_policy.window", r.Window, MaxRestartWindow))
}

// appendErrs appends the non-nil errors of more to errs.
func appendErrs(errs []error, more ...error) []error {
	for _, e := range more {
		if e != nil {
			errs = append(errs, e)
		}
	}
	return errs
}
