package api

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// ContainerOptions are the options of a service's containers that docker
// service create and compose call by these names: what the container
// looks like from inside (hostname, init, read-only root, capabilities,
// sysctls, ulimits, groups, a terminal), how it is stopped, what labels
// containerd keeps on it, and how much of its log the agent keeps.
type ContainerOptions struct {
	// Hostname is the container's hostname, a Go template over
	// {{.Service.Name}}, {{.Task.Slot}}, {{.Node.Hostname}} and friends
	// (see HostnameContext), rendered by the agent. Empty: the host's.
	Hostname string `json:"hostname,omitempty"`
	// StopSignal is sent to stop the container (default SIGTERM), as a
	// name ("SIGINT", "INT") or a number.
	StopSignal string `json:"stop_signal,omitempty"`
	// Init runs an init (tini) as PID 1, which reaps zombies and passes
	// signals on to the command.
	Init bool `json:"init,omitempty"`
	// ReadOnly mounts the root file system read-only.
	ReadOnly bool     `json:"read_only,omitempty"`
	CapAdd   []string `json:"cap_add,omitempty"`
	CapDrop  []string `json:"cap_drop,omitempty"`
	// Sysctls are namespaced kernel parameters (see ValidateSysctl).
	Sysctls map[string]string `json:"sysctls,omitempty"`
	Ulimits []Ulimit          `json:"ulimits,omitempty"`
	// Groups are additional groups of the process, by name or number.
	Groups []string `json:"groups,omitempty"`
	// TTY gives the process a terminal.
	TTY bool `json:"tty,omitempty"`
	// Labels are the container's labels in containerd, apart from the
	// service's own labels (compose's labels and deploy.labels).
	Labels map[string]string `json:"labels,omitempty"`
	// LogMaxSize is the size in bytes at which the task's log file is
	// rotated (0: the agent's default); LogMaxFiles how many files are kept,
	// the current one included (0: 2).
	LogMaxSize  int64  `json:"log_max_size,omitempty"`
	LogMaxFiles uint32 `json:"log_max_files,omitempty"`
}

// Ulimit is one resource limit of the container's processes.
type Ulimit struct {
	Name string `json:"name"` // nofile, nproc, core, ... (docker's names)
	Soft int64  `json:"soft"`
	Hard int64  `json:"hard"`
}

// IsZero reports whether no option is set.
func (o *ContainerOptions) IsZero() bool {
	return o == nil || (o.Hostname == "" && o.StopSignal == "" && !o.Init && !o.ReadOnly && !o.TTY &&
		len(o.CapAdd) == 0 && len(o.CapDrop) == 0 && len(o.Sysctls) == 0 && len(o.Ulimits) == 0 &&
		len(o.Groups) == 0 && len(o.Labels) == 0 && o.LogMaxSize == 0 && o.LogMaxFiles == 0)
}

// Clone returns a deep copy of o (nil for nil).
func (o *ContainerOptions) Clone() *ContainerOptions {
	if o == nil {
		return nil
	}
	c := *o
	c.CapAdd = slices.Clone(o.CapAdd)
	c.CapDrop = slices.Clone(o.CapDrop)
	c.Sysctls = cloneMap(o.Sysctls)
	c.Ulimits = slices.Clone(o.Ulimits)
	c.Groups = slices.Clone(o.Groups)
	c.Labels = cloneMap(o.Labels)
	return &c
}

// Limits of the container options.
const (
	MaxCapabilities  = 64 // entries of cap_add or cap_drop
	MaxSysctls       = 64
	MaxUlimits       = 32
	MaxGroups        = 64
	MaxSysctlLen     = 256 // a sysctl key or value
	MaxHostnameLen   = 63  // a hostname, rendered (a DNS label)
	MaxHostnameTmpl  = 256 // the hostname template
	MaxLogFiles      = 2   // the current file and one rotated
	MinLogMaxSize    = 4 << 10
	MaxLogMaxSize    = 1 << 30
	reservedLabelKey = "shoal."
)

// ValidateContainerOptions checks o, naming each bad field, its value
// and the rule. hostNetwork says the task shares the node's network
// namespace, where net.* sysctls would change the host.
func ValidateContainerOptions(o *ContainerOptions, service string, hostNetwork bool) []error {
	if o == nil {
		return nil
	}
	const f = "spec.container."
	var errs []error
	if o.Hostname != "" {
		errs = appendErrs(errs, ValidateHostnameTemplate(f+"hostname", o.Hostname, service))
	}
	if o.StopSignal != "" {
		if _, err := ParseSignal(o.StopSignal); err != nil {
			errs = append(errs, &FieldError{Field: f + "stop_signal", Value: o.StopSignal, Err: err})
		}
	}
	errs = append(errs, validateCaps(f+"cap_add", o.CapAdd)...)
	errs = append(errs, validateCaps(f+"cap_drop", o.CapDrop)...)
	errs = append(errs, validateSysctls(f+"sysctls", o.Sysctls, hostNetwork)...)
	errs = append(errs, validateUlimits(f+"ulimits", o.Ulimits)...)
	errs = append(errs, validateGroups(f+"groups", o.Groups)...)
	errs = append(errs, validateLabels(f+"labels", o.Labels)...)
	for _, k := range slices.Sorted(maps.Keys(o.Labels)) {
		if strings.HasPrefix(strings.ToLower(k), reservedLabelKey) {
			errs = append(errs, fieldErr(f+"labels", k, "keys starting with %q are shoal's own", reservedLabelKey))
		}
	}
	if n := o.LogMaxSize; n != 0 && (n < MinLogMaxSize || n > MaxLogMaxSize) {
		errs = append(errs, fieldErr(f+"log_max_size", strconv.FormatInt(n, 10), "want %s to %s", FormatMemory(MinLogMaxSize), FormatMemory(MaxLogMaxSize)))
	}
	if o.LogMaxFiles > MaxLogFiles {
		errs = append(errs, fieldErr(f+"log_max_files", strconv.FormatUint(uint64(o.LogMaxFiles), 10),
			"at most %d (the current file and one rotated one)", MaxLogFiles))
	}
	return errs
}

// ParseSignal reads a signal as docker does: "SIGTERM", "TERM" or "15".
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("signal number %d: want 1 to 64", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if sig, ok := signals[name]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal: want a name like SIGTERM, SIGINT, SIGQUIT, SIGUSR1 or a number")
}

var signals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "BUS": syscall.SIGBUS, "CHLD": syscall.SIGCHLD,
	"CONT": syscall.SIGCONT, "FPE": syscall.SIGFPE, "HUP": syscall.SIGHUP, "ILL": syscall.SIGILL,
	"INT": syscall.SIGINT, "IO": syscall.SIGIO, "KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE,
	"PROF": syscall.SIGPROF, "PWR": syscall.SIGPWR, "QUIT": syscall.SIGQUIT, "SEGV": syscall.SIGSEGV,
	"STKFLT": syscall.SIGSTKFLT, "STOP": syscall.SIGSTOP, "SYS": syscall.SIGSYS, "TERM": syscall.SIGTERM,
	"TRAP": syscall.SIGTRAP, "TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU,
	"URG": syscall.SIGURG, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "VTALRM": syscall.SIGVTALRM,
	"WINCH": syscall.SIGWINCH, "XCPU": syscall.SIGXCPU, "XFSZ": syscall.SIGXFSZ,
}

func validateGroups(field string, groups []string) []error {
	if err := CheckCount(field, len(groups), MaxGroups); err != nil {
		return []error{err}
	}
	var errs []error
	for i, g := range groups {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case g == "":
			errs = append(errs, fieldErr(f, g, "empty group"))
		case len(g) > MaxUserLen:
			errs = append(errs, CheckLen(f, g, MaxUserLen))
		case strings.ContainsAny(g, ":\x00\n"):
			errs = append(errs, fieldErr(f, g, "a group name or number cannot hold ':', NUL or a newline"))
		}
	}
	return errs
}

// containerBytes adds up the strings of o, for the spec's total.
func containerBytes(o *ContainerOptions) int {
	if o == nil {
		return 0
	}
	n := len(o.Hostname) + len(o.StopSignal)
	for _, l := range [][]string{o.CapAdd, o.CapDrop, o.Groups} {
		for _, v := range l {
			n += len(v)
		}
	}
	for _, m := range []map[string]string{o.Sysctls, o.Labels} {
		for k, v := range m {
			n += len(k) + len(v)
		}
	}
	for _, u := range o.Ulimits {
		n += len(u.Name)
	}
	return n
}

// validateTmpfs checks a tmpfs mount: no source, a size that is not
// negative, and permission bits only.
func validateTmpfs(f string, m Mount) []error {
	var errs []error
	if m.Source != "" {
		errs = append(errs, fieldErr(f+".source", m.Source, "a tmpfs mount has no source"))
	}
	if m.TmpfsSize < 0 || m.TmpfsSize > MaxMemoryBytes {
		errs = append(errs, fieldErr(f+".tmpfs_size", strconv.FormatInt(m.TmpfsSize, 10), "want 0 (the kernel's default) to %s", FormatMemory(MaxMemoryBytes)))
	}
	if m.TmpfsMode > 0o7777 {
		errs = append(errs, fieldErr(f+".tmpfs_mode", strconv.FormatUint(uint64(m.TmpfsMode), 8), "want permission bits, at most 7777 (octal)"))
	}
	return errs
}

// SetLogOption applies one of docker's json-file log options: max-size
// (a size like 10m) or max-file (a count).
func (o *ContainerOptions) SetLogOption(key, value string) error {
	switch key {
	case "max-size":
		n, err := ParseMemory(value)
		if err != nil {
			return err
		}
		o.LogMaxSize = n
	case "max-file":
		n, err := strconv.ParseUint(value, 10, 32)
		if err != nil || n == 0 {
			return fmt.Errorf("max-file wants a count of at least 1")
		}
		o.LogMaxFiles = uint32(n)
	default:
		return fmt.Errorf("unknown log option %q: want max-size or max-file", key)
	}
	return nil
}
