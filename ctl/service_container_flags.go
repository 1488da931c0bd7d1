package ctl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/shoal-sched/shoal/api"
)

// containerFlags are docker's container options of service create and
// update. Create sets whole lists; update adds and removes (-add/-rm), as
// docker service update does.
type containerFlags struct {
	hostname, stopSignal         string
	init, readOnly, tty          bool
	capAdd, capDrop              []string
	sysctls, sysctlAdd, sysctlRm []string
	ulimits, ulimitAdd, ulimitRm []string
	labels, labelAdd, labelRm    []string
	groups, groupAdd, groupRm    []string
	envFiles, logOpts            []string
}

func (c *containerFlags) register(fs *pflag.FlagSet, update bool) {
	fs.StringVar(&c.hostname, "hostname", "", "container hostname; a template like {{.Service.Name}}-{{.Task.Slot}} ({{.Node.Hostname}}, {{.Task.ID}}, ... too)")
	fs.StringVar(&c.stopSignal, "stop-signal", "", "signal that stops the container (default the image's, or SIGTERM)")
	fs.BoolVar(&c.init, "init", false, "run an init (tini) as PID 1 that reaps zombies and forwards signals")
	fs.BoolVar(&c.readOnly, "read-only", false, "mount the container's root file system read-only")
	fs.BoolVarP(&c.tty, "tty", "t", false, "give the process a terminal")
	fs.StringArrayVar(&c.capAdd, "cap-add", nil, "add a Linux capability, like NET_ADMIN, or ALL (repeatable)")
	fs.StringArrayVar(&c.capDrop, "cap-drop", nil, "drop a Linux capability, like CHOWN, or ALL (repeatable)")
	fs.StringArrayVar(&c.logOpts, "log-opt", nil, "log option max-size=SIZE (like 10m) or max-file=N (1 or 2) (repeatable)")
	if update {
		fs.StringArrayVar(&c.sysctlAdd, "sysctl-add", nil, "add or replace a namespaced sysctl KEY=VALUE (repeatable)")
		fs.StringArrayVar(&c.sysctlRm, "sysctl-rm", nil, "remove a sysctl by KEY (repeatable)")
		fs.StringArrayVar(&c.ulimitAdd, "ulimit-add", nil, "add or replace a ulimit NAME=SOFT[:HARD] (repeatable)")
		fs.StringArrayVar(&c.ulimitRm, "ulimit-rm", nil, "remove a ulimit by NAME (repeatable)")
		fs.StringArrayVar(&c.labelAdd, "container-label-add", nil, "add or replace a container label KEY=VALUE (repeatable)")
		fs.StringArrayVar(&c.labelRm, "container-label-rm", nil, "remove a container label by KEY (repeatable)")
		fs.StringArrayVar(&c.groupAdd, "group-add", nil, "add a supplementary group of the process (repeatable)")
		fs.StringArrayVar(&c.groupRm, "group-rm", nil, "remove a supplementary group (repeatable)")
		return
	}
	fs.StringArrayVar(&c.sysctls, "sysctl", nil, "namespaced sysctl KEY=VALUE: kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.* (repeatable)")
	fs.StringArrayVar(&c.ulimits, "ulimit", nil, "ulimit NAME=SOFT[:HARD], like nofile=1024:2048 (repeatable)")
	fs.StringArrayVar(&c.labels, "container-label", nil, "container label KEY=VALUE, apart from the service's --label (repeatable)")
	fs.StringArrayVar(&c.groups, "group", nil, "supplementary group of the process, by name or GID (repeatable)")
	fs.StringArrayVar(&c.envFiles, "env-file", nil, "read environment variables from a file of KEY=VALUE lines (repeatable; --env wins)")
}

// apply changes s as the given flags say.
func (c *containerFlags) apply(changed func(string) bool, s *api.ServiceSpec) []error {
	o := s.Container.Clone()
	if o == nil {
		o = &api.ContainerOptions{}
	}
	var errs []error
	set := func(name string, apply func()) {
		if changed(name) {
			apply()
		}
	}
	set("hostname", func() { o.Hostname = c.hostname })
	set("stop-signal", func() { o.StopSignal = c.stopSignal })
	set("init", func() { o.Init = c.init })
	set("read-only", func() { o.ReadOnly = c.readOnly })
	set("tty", func() { o.TTY = c.tty })
	o.CapAdd = addUnique(without(o.CapAdd, c.capDrop), c.capAdd)
	o.CapDrop = addUnique(without(o.CapDrop, c.capAdd), c.capDrop)
	var err error
	if o.Sysctls, err = setPairs(o.Sysctls, "--sysctl", c.sysctls, changed("sysctl"), "--sysctl-add", c.sysctlAdd, c.sysctlRm); err != nil {
		errs = append(errs, err)
	}
	if o.Labels, err = setPairs(o.Labels, "--container-label", c.labels, changed("container-label"), "--container-label-add", c.labelAdd, c.labelRm); err != nil {
		errs = append(errs, err)
	}
	if changed("group") {
		o.Groups = nil
	}
	o.Groups = addUnique(without(o.Groups, c.groupRm), append(slices.Clone(c.groups), c.groupAdd...))
	if o.Ulimits, err = c.applyUlimits(o.Ulimits, changed("ulimit")); err != nil {
		errs = append(errs, err)
	}
	if err := applyLogOpts(o, c.logOpts); err != nil {
		errs = append(errs, err)
	}
	if err := c.applyEnvFiles(s); err != nil {
		errs = append(errs, err)
	}
	s.Container = o
	if o.IsZero() {
		s.Container = nil
	}
	return errs
}

func (c *containerFlags) applyUlimits(list []api.Ulimit, replace bool) ([]api.Ulimit, error) {
	if replace {
		list = nil
	}
	list = slices.DeleteFunc(slices.Clone(list), func(u api.Ulimit) bool { return slices.Contains(c.ulimitRm, u.Name) })
	var errs []error
	for _, pair := range []struct {
		flag string
		vals []string
	}{{"--ulimit", c.ulimits}, {"--ulimit-add", c.ulimitAdd}} {
		for _, v := range pair.vals {
			u, err := api.ParseUlimit(v)
			if err != nil {
				errs = append(errs, &api.FieldError{Field: pair.flag, Value: v, Err: err})
				continue
			}
			list = slices.DeleteFunc(list, func(o api.Ulimit) bool { return o.Name == u.Name })
			list = append(list, u)
		}
	}
	return list, errors.Join(errs...)
}

// applyLogOpts reads docker's --log-opt max-size and max-file.
func applyLogOpts(o *api.ContainerOptions, opts []string) error {
	var errs []error
	for _, kv := range opts {
		k, v, _ := strings.Cut(kv, "=")
		if err := o.SetLogOption(k, v); err != nil {
			errs = append(errs, &api.FieldError{Field: "--log-opt", Value: kv, Err: err})
		}
	}
	return errors.Join(errs...)
}

// applyEnvFiles puts the variables of the --env-file files before those
// of --env, which win.
func (c *containerFlags) applyEnvFiles(s *api.ServiceSpec) error {
	var fromFiles []string
	for _, path := range c.envFiles {
		vars, err := readEnvFile(path)
		if err != nil {
			return &api.FieldError{Field: "--env-file", Value: path, Err: err}
		}
		fromFiles = append(fromFiles, vars...)
	}
	if len(fromFiles) == 0 {
		return nil
	}
	env, err := addEnv(nil, "--env-file", fromFiles)
	if err != nil {
		return err
	}
	env, err = addEnv(env, "--env", s.Env)
	s.Env = env
	return err
}

// readEnvFile reads docker's env file: KEY=VALUE lines taken as they are,
// a bare KEY takes its value from shoalctl's environment (skipped when
// unset), blank lines and lines starting with # are skipped.
func readEnvFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, hasValue := strings.Cut(line, "=")
		if strings.ContainsAny(k, " \t") || k == "" {
			return nil, fmt.Errorf("line %d: variable name %q has white space or is empty", n, k)
		}
		if !hasValue {
			if v, ok := os.LookupEnv(k); ok {
				out = append(out, k+"="+v)
			}
			continue
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

// setPairs sets KEY=VALUE entries: replace (the create flag given) starts
// from none; then rm keys go and add entries are set.
func setPairs(m map[string]string, flag string, all []string, replace bool, addFlag string, add, rm []string) (map[string]string, error) {
	if replace {
		m = nil
	}
	m = cloneMapOrNil(m)
	for _, k := range rm {
		delete(m, k)
	}
	m, err := addLabels(m, flag, all)
	m2, err2 := addLabels(m, addFlag, add)
	return m2, errors.Join(err, err2)
}

func cloneMapOrNil(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func addUnique(list, add []string) []string {
	for _, v := range add {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

func without(list, rm []string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(v string) bool { return slices.Contains(rm, v) })
}
