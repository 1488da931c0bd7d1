package controlapi

import (
	"github.com/shoal-sched/shoal/api"
)

// prepareSpec fills in a spec's defaults and checks it. A rejected spec
// returns an error wrapping api.ErrInvalid that names every bad field and
// its value.
func prepareSpec(spec *api.ServiceSpec) error {
	api.ApplyDefaults(spec)
	return api.ValidateServiceSpec(spec)
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
