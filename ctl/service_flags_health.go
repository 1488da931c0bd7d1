package ctl

import (
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/shoal-sched/shoal/api"
)

// healthFlags are the health check flags of service create and update, as
// docker's, and --no-resolve-image.
type healthFlags struct {
	cmd                            string
	interval, timeout, startPeriod time.Duration
	retries                        int
	none                           bool
	noResolve                      bool
}

func (h *healthFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&h.cmd, "health-cmd", "", "command run in the container to check its health (through /bin/sh -c, like HEALTHCHECK CMD-SHELL)")
	fs.Var(newDurationValue(&h.interval, 0), "health-interval", "time between health checks (default 30s)")
	fs.Var(newDurationValue(&h.timeout, 0), "health-timeout", "longest time one health check may run (default 30s)")
	fs.Var(newDurationValue(&h.startPeriod, 0), "health-start-period", "time after start when failed checks do not count (default 0s)")
	fs.IntVar(&h.retries, "health-retries", 0, "consecutive failures that make the task unhealthy (default 3)")
	fs.BoolVar(&h.none, "no-healthcheck", false, "run no health check, not even the image's HEALTHCHECK")
	fs.BoolVar(&h.noResolve, "no-resolve-image", false, "run the image tag as it is on each node instead of the digest the managers resolve once")
}

// apply sets the health check of s from the flags that were given: on
// update it changes only those fields.
func (h *healthFlags) apply(changed func(string) bool, s *api.ServiceSpec) []error {
	names := []string{"health-cmd", "health-interval", "health-timeout", "health-start-period", "health-retries"}
	given := false
	for _, n := range names {
		given = given || changed(n)
	}
	var errs []error
	if changed("no-healthcheck") && h.none {
		if given {
			errs = append(errs, fieldErr("--no-healthcheck", "true", "conflicts with the --health-* flags given"))
		}
		s.Healthcheck = &api.Healthcheck{Test: []string{"NONE"}}
		return errs
	}
	if !given {
		return nil
	}
	hc := &api.Healthcheck{}
	if s.Healthcheck != nil && !api.HealthcheckDisabled(s.Healthcheck) {
		c := *s.Healthcheck
		hc = &c
	}
	if changed("health-cmd") {
		hc.Test = nil
		if h.cmd != "" {
			hc.Test = []string{"CMD-SHELL", h.cmd}
		}
	}
	if changed("health-interval") {
		hc.Interval = api.Duration(h.interval)
	}
	if changed("health-timeout") {
		hc.Timeout = api.Duration(h.timeout)
	}
	if changed("health-start-period") {
		hc.StartPeriod = api.Duration(h.startPeriod)
	}
	if changed("health-retries") {
		if h.retries < 0 {
			errs = append(errs, fieldErr("--health-retries", strconv.Itoa(h.retries), "must not be negative"))
		} else {
			hc.Retries = uint64(h.retries)
		}
	}
	s.Healthcheck = hc
	return errs
}
