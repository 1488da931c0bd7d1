package ctl

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/shoal-sched/shoal/api"
)

// rolloutFlags are the --update-* and --rollback-* flags of service create
// and update, and --force of update.
type rolloutFlags struct {
	update, rollback configFlags
	force            bool
	rollbackNow      bool // update --rollback
}

// configFlags are the flags of one config, --PREFIX-parallelism and so on.
type configFlags struct {
	prefix      string // update | rollback
	parallelism uint64
	delay       time.Duration
	monitor     time.Duration
	ratio       float64
	action      string
	order       string
	canary      uint64
	autoPromote bool
}

func (r *rolloutFlags) register(fs *pflag.FlagSet, update bool) {
	r.update.register(fs, "update", "an update")
	r.rollback.register(fs, "rollback", "a rollback")
	if update {
		fs.BoolVar(&r.force, "force", false, "replace every task even if the spec did not change (rolling, with the update settings)")
		fs.BoolVar(&r.rollbackNow, "rollback", false, "roll back to the previous spec (as shoalctl service rollback; only --rollback-* flags go with it)")
	}
}

func (c *configFlags) register(fs *pflag.FlagSet, prefix, what string) {
	c.prefix = prefix
	fs.Var(newUintValue(&c.parallelism, api.DefaultParallelism), prefix+"-parallelism",
		fmt.Sprintf("tasks replaced at a time in %s (0: all at once)", what))
	fs.Var(newDurationValue(&c.delay, 0), prefix+"-delay",
		fmt.Sprintf("wait this long after a replacement is up before the next batch of %s", what))
	fs.Var(newDurationValue(&c.monitor, api.DefaultMonitor.Std()), prefix+"-monitor",
		fmt.Sprintf("a new task of %s that ends, or is not up, within this long of its start is a failure", what))
	fs.Float64Var(&c.ratio, prefix+"-max-failure-ratio", 0,
		fmt.Sprintf("share of the tasks (0 to 1) that may fail in %s before the failure action runs", what))
	actions := "pause, continue or rollback"
	if prefix == "rollback" {
		actions = "pause or continue"
	}
	fs.StringVar(&c.action, prefix+"-failure-action", api.FailurePause,
		fmt.Sprintf("what %s does past the failure ratio: %s", what, actions))
	fs.StringVar(&c.order, prefix+"-order", api.OrderStopFirst,
		fmt.Sprintf("stop-first (old task stops, then the new one starts) or start-first, in %s", what))
	if prefix == "update" {
		fs.Var(newUintValue(&c.canary, 0), "update-canary",
			"start N tasks of the new spec beside the old ones, then wait for shoalctl service promote (0: no canaries)")
		fs.BoolVar(&c.autoPromote, "update-auto-promote", false,
			"promote the canaries once they are up for the monitor window")
	}
}

// apply copies the given flags into u. A config that has no failure action
// yet (an unset config) takes every flag, given or not, so that what was
// not given gets the defaults the flags show and a given 0 stays 0.
func (c *configFlags) apply(changed func(string) bool, u *api.UpdateConfig) {
	names := []string{"parallelism", "delay", "monitor", "max-failure-ratio", "failure-action", "order", "canary", "auto-promote"}
	any := false
	for _, n := range names {
		any = any || changed(c.prefix+"-"+n)
	}
	if !any {
		return
	}
	whole := u.FailureAction == ""
	set := func(name string, apply func()) {
		if whole || changed(c.prefix+"-"+name) {
			apply()
		}
	}
	set("parallelism", func() { u.Parallelism = c.parallelism })
	set("delay", func() { u.Delay = api.Duration(c.delay) })
	set("monitor", func() { u.Monitor = api.Duration(c.monitor) })
	set("max-failure-ratio", func() { u.MaxFailureRatio = c.ratio })
	set("failure-action", func() { u.FailureAction = c.action })
	set("order", func() { u.Order = c.order })
	set("canary", func() { u.Canary = c.canary })
	set("auto-promote", func() { u.AutoPromote = c.autoPromote })
}

// apply copies the rollout flags that were given into s.
func (r *rolloutFlags) apply(changed func(string) bool, s *api.ServiceSpec) {
	r.update.apply(changed, &s.UpdateConfig)
	r.rollback.apply(changed, &s.RollbackConfig)
	if r.force {
		s.ForceUpdate++
	}
}

// rolloutFlagOfField names the flag behind an update or rollback config
// field, for error messages: spec.update_config.max_failure_ratio is
// --update-max-failure-ratio.
func rolloutFlagOfField(field string) string {
	for _, p := range []struct{ field, prefix string }{
		{"spec.update_config.", "--update-"},
		{"spec.rollback_config.", "--rollback-"},
	} {
		if name, ok := strings.CutPrefix(field, p.field); ok && name != "" {
			return p.prefix + strings.ReplaceAll(name, "_", "-")
		}
	}
	return ""
}
