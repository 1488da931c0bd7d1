package shoalpb

import (
	"fmt"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-sched/shoal/api"
)

// CheckServiceSpec checks what the wire form of a spec can get wrong and
// its domain form cannot show: a duration whose seconds and nanos
// disagree in sign or whose nanos are out of range would otherwise be
// read as some other duration. The rest is api.ValidateServiceSpec's.
func CheckServiceSpec(s *ServiceSpec) error {
	if s == nil {
		return nil
	}
	fields := []struct {
		name string
		d    *durationpb.Duration
	}{
		{"spec.stop_grace_period", s.GetStopGracePeriod()},
		{"spec.restart_policy.delay", s.GetRestartPolicy().GetDelay()},
		{"spec.restart_policy.window", s.GetRestartPolicy().GetWindow()},
		{"spec.update_config.delay", s.GetUpdateConfig().GetDelay()},
		{"spec.update_config.monitor", s.GetUpdateConfig().GetMonitor()},
		{"spec.healthcheck.interval", s.GetHealthcheck().GetInterval()},
		{"spec.healthcheck.timeout", s.GetHealthcheck().GetTimeout()},
		{"spec.healthcheck.start_period", s.GetHealthcheck().GetStartPeriod()},
	}
	for _, f := range fields {
		if f.d == nil {
			continue
		}
		if err := f.d.CheckValid(); err != nil {
			return &api.FieldError{Field: f.name, Value: fmt.Sprintf("%ds %dns", f.d.GetSeconds(), f.d.GetNanos()), Err: err}
		}
	}
	return nil
}
