package shoalpb

import (
	"errors"
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
	if err := checkPorts(s.GetEndpoint()); err != nil {
		return err
	}
	for _, f := range fields {
		if f.d == nil {
			continue
		}
		if err := checkDuration(f.d); err != nil {
			return &api.FieldError{Field: f.name, Value: fmt.Sprintf("%ds %dns", f.d.GetSeconds(), f.d.GetNanos()), Err: err}
		}
	}
	return nil
}

// checkDuration rejects a duration whose nanos are out of range or of the
// other sign than its seconds. Seconds beyond what a Go duration holds
// read as the largest (or smallest) one, which the limits refuse by name.
func checkDuration(d *durationpb.Duration) error {
	sec, nanos := d.GetSeconds(), d.GetNanos()
	switch {
	case nanos <= -1e9 || nanos >= 1e9:
		return fmt.Errorf("malformed duration: nanos %d out of range (-999999999 to 999999999)", nanos)
	case sec > 0 && nanos < 0, sec < 0 && nanos > 0:
		return errors.New("malformed duration: seconds and nanos disagree in sign")
	}
	return nil
}
