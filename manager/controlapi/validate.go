package controlapi

import (
	"regexp"

	"github.com/shoal-sched/shoal/api"
)

// prepareSpec fills in a spec's defaults and checks it. A rejected spec
// returns an InvalidArgument error naming the field and its value.
//
// WIRING: the full rules live in api.ApplyDefaults and
// api.ValidateServiceSpec; until they are merged this checks the fields
// without which no task can run.
func prepareSpec(spec *api.ServiceSpec) error {
	if spec.Mode == "" {
		spec.Mode = api.ModeReplicated
	}
	if !serviceName.MatchString(spec.Name) {
		return invalidf("spec.name %q: want 1-63 letters, digits, '-' or '_', starting with a letter or digit", spec.Name)
	}
	if spec.Image == "" {
		return invalidf("spec.image %q: an image reference is required", spec.Image)
	}
	switch spec.Mode {
	case api.ModeReplicated:
	case api.ModeGlobal:
		if spec.Replicas != 0 {
			return invalidf("spec.replicas %d: a global service runs one task per node; leave replicas unset", spec.Replicas)
		}
	default:
		return invalidf("spec.mode %q: want %q or %q", spec.Mode, api.ModeReplicated, api.ModeGlobal)
	}
	if err := checkResources(spec.Resources); err != nil {
		return err
	}
	return nil
}

var serviceName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$`)

func checkResources(r api.ResourceRequirements) error {
	for field, v := range map[string]int64{
		"spec.resources.reservations.nano_cpus":    r.Reservations.NanoCPUs,
		"spec.resources.reservations.memory_bytes": r.Reservations.MemoryBytes,
		"spec.resources.limits.nano_cpus":          r.Limits.NanoCPUs,
		"spec.resources.limits.memory_bytes":       r.Limits.MemoryBytes,
	} {
		if v < 0 {
			return invalidf("%s %d: must not be negative", field, v)
		}
	}
	return nil
}

// checkAvailability validates an operator's availability value ("" keeps
// the current one).
func checkAvailability(a string) error {
	switch api.NodeAvailability(a) {
	case "", api.AvailabilityActive, api.AvailabilityPause, api.AvailabilityDrain:
		return nil
	}
	return invalidf("availability %q: want %q, %q or %q", a,
		api.AvailabilityActive, api.AvailabilityPause, api.AvailabilityDrain)
}

// checkLabels validates label keys an operator adds or removes.
func checkLabels(add map[string]string, rm []string) error {
	for k := range add {
		if k == "" {
			return invalidf("label_add: empty key (value %q)", add[k])
		}
	}
	for _, k := range rm {
		if k == "" {
			return invalidf("label_rm: empty key")
		}
		if _, ok := add[k]; ok {
			return invalidf("label %q: both added and removed", k)
		}
	}
	return nil
}

func errMissing(field string) error { return invalidf("%s: missing", field) }
