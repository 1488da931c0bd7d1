package ctl

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/shoal-sched/shoal/api"
)

// serviceFlags holds what `service create` and `service update` read from
// their flags. Create applies all of them; update only those given.
type serviceFlags struct {
	update bool

	name       string
	mode       string
	replicas   uint64
	image      string
	args       string
	entrypoint string
	workdir    string
	user       string

	env, envAdd, envRm                     []string
	labels, labelAdd, labelRm              []string
	constraints, constraintAdd, constrRm   []string
	prefs, prefAdd, prefRm                 []string
	mounts, mountAdd, mountRm              []string
	reserveCPU, limitCPU                   int64
	reserveMemory, limitMemory             int64
	maxPerNode, restartMax                 uint64
	strategy, restartCondition             string
	restartDelay, restartWindow, stopGrace time.Duration

	rollout   rolloutFlags
	container containerFlags

	dryRun bool
	detach bool
	health healthFlags

	net     netFlags
	secrets secretFlags
}

// register adds the flags to fs: the replace-all list flags for create,
// the -add/-rm pairs for update.
func (f *serviceFlags) register(fs *pflag.FlagSet, update bool) {
	f.update = update
	if update {
		fs.StringVar(&f.image, "image", "", "run this image")
		fs.StringVar(&f.args, "args", "", "replace the command's arguments (split on white space)")
		fs.StringArrayVar(&f.envAdd, "env-add", nil, "add or replace an environment variable KEY=VALUE (repeatable)")
		fs.StringArrayVar(&f.envRm, "env-rm", nil, "remove an environment variable by KEY (repeatable)")
		fs.StringArrayVar(&f.labelAdd, "label-add", nil, "add or replace a service label KEY=VALUE (repeatable)")
		fs.StringArrayVar(&f.labelRm, "label-rm", nil, "remove a service label by KEY (repeatable)")
		fs.StringArrayVar(&f.constraintAdd, "constraint-add", nil, "add a placement constraint, like node.labels.zone==a (repeatable)")
		fs.StringArrayVar(&f.constrRm, "constraint-rm", nil, "remove a placement constraint (repeatable)")
		fs.StringArrayVar(&f.prefAdd, "placement-pref-add", nil, "add a placement preference, like spread=node.labels.zone (repeatable)")
		fs.StringArrayVar(&f.prefRm, "placement-pref-rm", nil, "remove a placement preference (repeatable)")
		fs.StringArrayVar(&f.mountAdd, "mount-add", nil, "add or replace (by target) a mount: type=bind|volume,source=S,target=T[,readonly] (repeatable)")
		fs.StringArrayVar(&f.mountRm, "mount-rm", nil, "remove the mount at a target path (repeatable)")
	} else {
		fs.StringVar(&f.name, "name", "", "service name (letters, digits, '-', '_', '.'; at most 63)")
		fs.StringVar(&f.mode, "mode", string(api.ModeReplicated), "replicated or global")
		fs.StringArrayVarP(&f.env, "env", "e", nil, "environment variable KEY=VALUE (repeatable)")
		fs.StringArrayVarP(&f.labels, "label", "l", nil, "service label KEY=VALUE (repeatable)")
		fs.StringArrayVar(&f.constraints, "constraint", nil, "placement constraint, like node.labels.zone==a (repeatable)")
		fs.StringArrayVar(&f.prefs, "placement-pref", nil, "placement preference, like spread=node.labels.zone (repeatable)")
		fs.StringArrayVar(&f.mounts, "mount", nil, "mount: type=bind|volume,source=S,target=T[,readonly] (repeatable)")
	}
	fs.Var(newUintValue(&f.replicas, 1), "replicas", "number of tasks (replicated mode)")
	fs.Var(cpuValue(&f.reserveCPU), "reserve-cpu", "CPUs reserved for each task, for placement (like 0.5)")
	fs.Var(memoryValue(&f.reserveMemory), "reserve-memory", "memory reserved for each task, for placement (64M = 64 MiB, as docker; or 64Mi)")
	fs.Var(cpuValue(&f.limitCPU), "limit-cpu", "CPU limit of each task (like 1.5)")
	fs.Var(memoryValue(&f.limitMemory), "limit-memory", "memory limit of each task (128M = 128 MiB, as docker; or 128Mi)")
	fs.Var(newUintValue(&f.maxPerNode, 0), "replicas-max-per-node", "at most this many tasks on one node (0: no limit)")
	fs.StringVar(&f.strategy, "placement-strategy", string(api.StrategySpread), "spread or binpack")
	fs.StringVar(&f.restartCondition, "restart-condition", string(api.RestartAny), "replace stopped tasks on: any, on-failure or none")
	fs.Var(newDurationValue(&f.restartDelay, api.DefaultRestartDelay.Std()), "restart-delay", "wait this long before replacing a stopped task")
	fs.Var(newUintValue(&f.restartMax, 0), "restart-max-attempts", "give up after this many replacements (0: never)")
	fs.Var(newDurationValue(&f.restartWindow, 0), "restart-window", "count attempts over this window (0: forever)")
	fs.Var(newDurationValue(&f.stopGrace, api.DefaultStopGracePeriod.Std()), "stop-grace-period", "time between SIGTERM and SIGKILL")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "replace the image's entrypoint (split on white space)")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "working directory in the container (absolute)")
	fs.StringVarP(&f.user, "user", "u", "", "user to run as (name, UID or UID:GID)")
	f.health.register(fs)
	f.rollout.register(fs, update)
	f.container.register(fs, update)
	f.net.register(fs, update)
	f.secrets.register(fs, update)
	fs.BoolVar(&f.dryRun, "dry-run", false, "print what the change would do; change nothing")
	fs.BoolVarP(&f.detach, "detach", "d", false,
		"return once the change is committed instead of waiting for the tasks (waiting is bounded by --timeout, default 3m)")
}

// waits reports whether the command waits for the tasks to converge.
func (f *serviceFlags) waits() bool { return !f.dryRun && !f.detach }

// createSpec builds a new spec from the flags, IMAGE and COMMAND ARG....
// Like docker, COMMAND and its arguments become Args (the image's cmd), and
// --entrypoint replaces the entrypoint (Command).
func (f *serviceFlags) createSpec(changed func(string) bool, args []string) (*api.ServiceSpec, error) {
	if len(args) == 0 {
		return nil, errors.New("an IMAGE is required: shoalctl service create --name NAME IMAGE [COMMAND [ARG...]]")
	}
	s := &api.ServiceSpec{Name: f.name, Image: args[0], Args: args[1:]}
	var errs []error
	if err := api.ValidateServiceName(f.name); err != nil {
		errs = append(errs, &api.FieldError{Field: "--name", Value: f.name, Err: err})
	}
	if err := api.ValidateImage(args[0]); err != nil {
		errs = append(errs, &api.FieldError{Field: "IMAGE", Value: args[0], Err: err})
	}
	switch api.ServiceMode(f.mode) {
	case api.ModeReplicated:
		s.Mode, s.Replicas = api.ModeReplicated, f.replicas
	case api.ModeGlobal:
		s.Mode = api.ModeGlobal
		if changed("replicas") {
			errs = append(errs, fieldErr("--replicas", strconv.FormatUint(f.replicas, 10), "not allowed with --mode global (one task runs on every node)"))
		}
	default:
		errs = append(errs, fieldErr("--mode", f.mode, "want replicated or global"))
	}
	var err error
	if s.Env, err = addEnv(nil, "--env", f.env); err != nil {
		errs = append(errs, err)
	}
	if s.Labels, err = addLabels(nil, "--label", f.labels); err != nil {
		errs = append(errs, err)
	}
	if s.Placement.Constraints, err = addChecked(nil, "--constraint", f.constraints, api.ValidateConstraint); err != nil {
		errs = append(errs, err)
	}
	if s.Placement.Preferences, err = addChecked(nil, "--placement-pref", f.prefs, api.ValidatePreference); err != nil {
		errs = append(errs, err)
	}
	if s.Mounts, err = addMounts(nil, "--mount", f.mounts); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, f.applyScalars(changed, s)...)
	errs = append(errs, f.net.applyCreate(changed, s)...)
	errs = append(errs, f.secrets.applyCreate(s)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, checkSpec(s)
}

// updateSpec changes s as the given flags say.
func (f *serviceFlags) updateSpec(changed func(string) bool, s *api.ServiceSpec) error {
	var errs []error
	if changed("image") {
		if err := api.ValidateImage(f.image); err != nil {
			errs = append(errs, &api.FieldError{Field: "--image", Value: f.image, Err: err})
		}
		// The managers resolve the tag again (unless --no-resolve-image).
		s.Image, s.ImageDigest = f.image, ""
	}
	if changed("args") {
		s.Args = strings.Fields(f.args)
	}
	if changed("replicas") {
		if s.Mode == api.ModeGlobal {
			errs = append(errs, fieldErr("--replicas", strconv.FormatUint(f.replicas, 10), "service %q is global (one task per node); it cannot be scaled", s.Name))
		}
		s.Replicas = f.replicas
	}
	var err error
	s.Env = removeEnv(s.Env, f.envRm)
	if s.Env, err = addEnv(s.Env, "--env-add", f.envAdd); err != nil {
		errs = append(errs, err)
	}
	for _, k := range f.labelRm {
		delete(s.Labels, k)
	}
	if s.Labels, err = addLabels(s.Labels, "--label-add", f.labelAdd); err != nil {
		errs = append(errs, err)
	}
	s.Placement.Constraints = removeAll(s.Placement.Constraints, f.constrRm)
	if s.Placement.Constraints, err = addChecked(s.Placement.Constraints, "--constraint-add", f.constraintAdd, api.ValidateConstraint); err != nil {
		errs = append(errs, err)
	}
	s.Placement.Preferences = removeAll(s.Placement.Preferences, f.prefRm)
	if s.Placement.Preferences, err = addChecked(s.Placement.Preferences, "--placement-pref-add", f.prefAdd, api.ValidatePreference); err != nil {
		errs = append(errs, err)
	}
	s.Mounts = slices.DeleteFunc(s.Mounts, func(m api.Mount) bool { return slices.Contains(f.mountRm, m.Target) })
	if s.Mounts, err = addMounts(s.Mounts, "--mount-add", f.mountAdd); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, f.applyScalars(changed, s)...)
	errs = append(errs, f.net.applyUpdate(changed, s)...)
	errs = append(errs, f.secrets.applyUpdate(s)...)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return checkSpec(s)
}

// applyScalars copies the single-valued flags that were given into s.
func (f *serviceFlags) applyScalars(changed func(string) bool, s *api.ServiceSpec) []error {
	var errs []error
	set := func(name string, apply func()) {
		if changed(name) {
			apply()
		}
	}
	set("reserve-cpu", func() { s.Resources.Reservations.NanoCPUs = f.reserveCPU })
	set("reserve-memory", func() { s.Resources.Reservations.MemoryBytes = f.reserveMemory })
	set("limit-cpu", func() { s.Resources.Limits.NanoCPUs = f.limitCPU })
	set("limit-memory", func() { s.Resources.Limits.MemoryBytes = f.limitMemory })
	set("replicas-max-per-node", func() { s.Placement.MaxReplicasPerNode = f.maxPerNode })
	set("placement-strategy", func() {
		switch api.PlacementStrategy(f.strategy) {
		case api.StrategySpread, api.StrategyBinpack:
			s.Placement.Strategy = api.PlacementStrategy(f.strategy)
		default:
			errs = append(errs, fieldErr("--placement-strategy", f.strategy, "want spread or binpack"))
		}
	})
	set("restart-condition", func() {
		switch api.RestartCondition(f.restartCondition) {
		case api.RestartAny, api.RestartOnFailure, api.RestartNone:
			s.RestartPolicy.Condition = api.RestartCondition(f.restartCondition)
		default:
			errs = append(errs, fieldErr("--restart-condition", f.restartCondition, "want any, on-failure or none"))
		}
	})
	set("restart-delay", func() { s.RestartPolicy.Delay = api.Duration(f.restartDelay) })
	set("restart-max-attempts", func() { s.RestartPolicy.MaxAttempts = f.restartMax })
	set("restart-window", func() { s.RestartPolicy.Window = api.Duration(f.restartWindow) })
	set("stop-grace-period", func() { s.StopGracePeriod = api.Duration(f.stopGrace) })
	set("entrypoint", func() { s.Command = nilIfEmpty(strings.Fields(f.entrypoint)) })
	set("workdir", func() {
		if f.workdir != "" && !strings.HasPrefix(f.workdir, "/") {
			errs = append(errs, fieldErr("--workdir", f.workdir, "must be an absolute path"))
		}
		s.Dir = f.workdir
	})
	set("user", func() { s.User = f.user })
	f.rollout.apply(changed, s)
	errs = append(errs, f.health.apply(changed, s)...)
	return append(errs, f.container.apply(changed, s)...)
}

// checkSpec fills defaults and validates s as the manager will, naming the
// flag behind each spec field that fails.
func checkSpec(s *api.ServiceSpec) error {
	api.ApplyDefaults(s)
	err := api.ValidateServiceSpec(s)
	if err == nil {
		return nil
	}
	var errs []error
	for _, e := range unjoin(err) {
		var fe *api.FieldError
		if errors.As(e, &fe) {
			if flag := flagOfField(fe.Field); flag != "" {
				e = &api.FieldError{Field: fe.Field + " (" + flag + ")", Value: fe.Value, Err: fe.Err}
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// asFlag renames the field of a validation error after the flag that set
// it: flags maps a field (without an index, "label_rm" for
// "label_rm[2]") to its flag.
func asFlag(err error, flags map[string]string) error {
	var fe *api.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	field, _, _ := strings.Cut(fe.Field, "[")
	if flag, ok := flags[field]; ok {
		return &api.FieldError{Field: flag, Value: fe.Value, Err: fe.Err}
	}
	return err
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok && !isFieldError(err) {
		return j.Unwrap()
	}
	return []error{err}
}

func isFieldError(err error) bool {
	_, ok := err.(*api.FieldError)
	return ok
}

// flagOfField names the flag that sets a spec field, for error messages.
func flagOfField(field string) string {
	prefixes := []struct{ field, flag string }{
		{"spec.resources.limits.memory_bytes", "--limit-memory"},
		{"spec.resources.limits.nano_cpus", "--limit-cpu"},
		{"spec.resources.reservations.memory_bytes", "--reserve-memory"},
		{"spec.resources.reservations.nano_cpus", "--reserve-cpu"},
		{"spec.mounts", "--mount"},
		{"spec.env", "--env"},
		{"spec.labels", "--label"},
		{"spec.replicas", "--replicas"},
		{"spec.dir", "--workdir"},
		{"spec.healthcheck.interval", "--health-interval"},
		{"spec.healthcheck.timeout", "--health-timeout"},
		{"spec.healthcheck.start_period", "--health-start-period"},
		{"spec.healthcheck.retries", "--health-retries"},
		{"spec.healthcheck.test", "--health-cmd"},
		{"spec.container.hostname", "--hostname"},
		{"spec.container.stop_signal", "--stop-signal"},
		{"spec.container.cap_add", "--cap-add"},
		{"spec.container.cap_drop", "--cap-drop"},
		{"spec.container.sysctls", "--sysctl"},
		{"spec.container.ulimits", "--ulimit"},
		{"spec.container.groups", "--group"},
		{"spec.container.labels", "--container-label"},
		{"spec.container.log_", "--log-opt"},
		{"spec.networks", "--network"},
		{"spec.secrets", "--secret"},
		{"spec.configs", "--config"},
		{"spec.endpoint.ports", "--publish"},
		{"spec.endpoint.mode", "--endpoint-mode"},
	}
	for _, p := range prefixes {
		if strings.HasPrefix(field, p.field) {
			return p.flag
		}
	}
	return rolloutFlagOfField(field)
}

func fieldErr(field, value, format string, args ...any) *api.FieldError {
	return &api.FieldError{Field: field, Value: value, Err: fmt.Errorf(format, args...)}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
