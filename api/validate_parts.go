package api

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Mount types.
const (
	MountBind   = "bind"
	MountVolume = "volume"
	MountTmpfs  = "tmpfs"
)

func validateMounts(mounts []Mount) []error {
	if err := CheckCount("spec.mounts", len(mounts), MaxMounts); err != nil {
		return []error{err}
	}
	var errs []error
	targets := map[string]int{}
	for i, m := range mounts {
		f := fmt.Sprintf("spec.mounts[%d]", i)
		if e := appendErrs(nil, checkString(f+".source", m.Source, MaxPathLen), checkString(f+".target", m.Target, MaxPathLen)); len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		switch m.Type {
		case MountBind:
			if !path.IsAbs(m.Source) {
				errs = append(errs, fieldErr(f+".source", m.Source, "a bind mount's source must be an absolute path on the node"))
			}
		case MountVolume:
			if err := validateVolumeName(m.Source); err != nil {
				errs = append(errs, &FieldError{Field: f + ".source", Value: m.Source, Err: err})
			}
		case MountTmpfs:
			errs = append(errs, validateTmpfs(f, m)...)
		default:
			errs = append(errs, fieldErr(f+".type", m.Type, "want bind, volume or tmpfs"))
		}
		switch {
		case !path.IsAbs(m.Target):
			errs = append(errs, fieldErr(f+".target", m.Target, "must be an absolute path in the container"))
		case path.Clean(m.Target) == "/":
			errs = append(errs, fieldErr(f+".target", m.Target, "cannot mount over the container's root"))
		default:
			if j, dup := targets[path.Clean(m.Target)]; dup {
				errs = append(errs, fieldErr(f+".target", m.Target, "already the target of spec.mounts[%d]", j))
			}
			targets[path.Clean(m.Target)] = i
		}
	}
	return errs
}

// validateVolumeName follows docker's local volume names: a letter or digit,
// then letters, digits, '_', '.' or '-'.
func validateVolumeName(name string) error {
	if name == "" {
		return errors.New("a volume mount needs a volume name as its source")
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if i > 0 {
			ok = ok || r == '_' || r == '.' || r == '-'
		}
		if !ok {
			return fmt.Errorf("character %q at %d not allowed in a volume name (use letters, digits, '_', '.', '-')", r, i)
		}
	}
	return nil
}

func validateEnv(env []string) []error {
	if err := CheckCount("spec.env", len(env), MaxEnv); err != nil {
		return []error{err}
	}
	var errs []error
	for i, kv := range env {
		if err := ValidateEnvVar(kv); err != nil {
			errs = append(errs, &FieldError{Field: fmt.Sprintf("spec.env[%d]", i), Value: kv, Err: err})
		}
	}
	return errs
}

// ValidateEnvVar checks one KEY=VALUE environment entry.
func ValidateEnvVar(kv string) error {
	k, _, ok := strings.Cut(kv, "=")
	switch {
	case len(kv) > MaxArgLen:
		return fmt.Errorf("%d bytes, at most %d allowed", len(kv), MaxArgLen)
	case !ok:
		return errors.New("want KEY=VALUE")
	case k == "":
		return errors.New("empty variable name")
	case strings.ContainsAny(k, " \t\n\x00"):
		return errors.New("the variable name contains white space or NUL")
	case strings.ContainsRune(kv, 0):
		return errors.New("contains NUL")
	}
	return nil
}

// ValidateLabels checks labels (of a service, or a node's after an update):
// how many, and each key and value.
func ValidateLabels(field string, labels map[string]string) error {
	return joinErrors(validateLabels(field, labels))
}

func validateLabels(field string, labels map[string]string) []error {
	if err := CheckCount(field, len(labels), MaxLabels); err != nil {
		return []error{err}
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		errs = appendErrs(errs, ValidateLabel(field, k, labels[k]))
	}
	return errs
}

// ValidateLabel checks one label: a key that is not blank, holds no control
// character and is at most MaxLabelKeyLen bytes, and a value of at most
// MaxLabelValueLen bytes. Errors name the key as field[KEY].
func ValidateLabel(field, key, value string) error {
	switch {
	case strings.TrimSpace(key) == "":
		return fieldErr(field, key, "empty label key")
	case len(key) > MaxLabelKeyLen:
		return fieldErr(field, key, "label key of %d bytes, at most %d allowed", len(key), MaxLabelKeyLen)
	case strings.IndexFunc(key, unicode.IsControl) >= 0:
		return fieldErr(field, key, "label key contains a control character")
	case len(value) > MaxLabelValueLen:
		return fieldErr(field+"["+key+"]", value, "label value of %d bytes, at most %d allowed", len(value), MaxLabelValueLen)
	}
	return nil
}

func validateDependsOn(self string, deps []Dependency) []error {
	if err := CheckCount("spec.depends_on", len(deps), MaxDependsOn); err != nil {
		return []error{err}
	}
	var errs []error
	seen := map[string]bool{}
	for i, d := range deps {
		f := fmt.Sprintf("spec.depends_on[%d]", i)
		if err := ValidateServiceName(d.Service); err != nil {
			errs = append(errs, &FieldError{Field: f + ".service", Value: d.Service, Err: err})
		} else if d.Service == self {
			errs = append(errs, fieldErr(f+".service", d.Service, "a service cannot depend on itself"))
		} else if seen[d.Service] {
			errs = append(errs, fieldErr(f+".service", d.Service, "listed twice"))
		}
		seen[d.Service] = true
		switch d.Condition {
		case DependStarted, DependHealthy, DependCompletedSuccessfully:
		default:
			errs = append(errs, fieldErr(f+".condition", string(d.Condition),
				"want %s, %s or %s", DependStarted, DependHealthy, DependCompletedSuccessfully))
		}
	}
	return errs
}

func validateHealthcheck(h *Healthcheck) []error {
	if h == nil {
		return nil
	}
	errs := checkStrings("spec.healthcheck.test", h.Test, MaxArgs, MaxArgLen)
	if len(errs) == 0 && len(h.Test) > 0 {
		switch h.Test[0] {
		case "NONE":
		case "CMD", "CMD-SHELL":
			if len(h.Test) < 2 {
				errs = append(errs, fieldErr("spec.healthcheck.test", strings.Join(h.Test, " "), "%s needs a command", h.Test[0]))
			}
		default:
			errs = append(errs, fieldErr("spec.healthcheck.test[0]", h.Test[0], "want NONE, CMD or CMD-SHELL"))
		}
	}
	if h.Retries > MaxHealthRetries {
		errs = append(errs, fieldErr("spec.healthcheck.retries", strconv.FormatUint(h.Retries, 10), "more than %d", MaxHealthRetries))
	}
	return appendErrs(errs,
		checkProbeTime("spec.healthcheck.interval", h.Interval),
		checkProbeTime("spec.healthcheck.timeout", h.Timeout),
		checkDuration("spec.healthcheck.start_period", h.StartPeriod, MaxDuration))
}

// checkProbeTime checks a healthcheck interval or timeout: 0 (the default),
// or between MinHealthInterval and MaxDuration.
func checkProbeTime(field string, d Duration) error {
	if d > 0 && d < MinHealthInterval {
		return fieldErr(field, d.Std().String(), "shorter than %s, the least allowed (0 means the default)", MinHealthInterval.Std())
	}
	return checkDuration(field, d, MaxDuration)
}
