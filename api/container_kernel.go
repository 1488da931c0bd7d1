package api

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// capabilities are the Linux capabilities by their names without CAP_.
var capabilities = []string{
	"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER",
	"KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN",
	"NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP",
	"SETUID", "SYSLOG", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE",
	"SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG",
	"WAKE_ALARM",
}

// CapAll is the cap_add / cap_drop entry that means every capability.
const CapAll = "ALL"

// NormalizeCapability returns a capability as the OCI spec names it
// ("CAP_NET_ADMIN"), or CapAll, from docker's spellings ("net_admin",
// "CAP_NET_ADMIN", "all"); ok is false for an unknown one.
func NormalizeCapability(c string) (string, bool) {
	u := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
	if u == CapAll {
		return CapAll, true
	}
	if slices.Contains(capabilities, u) {
		return "CAP_" + u, true
	}
	return "", false
}

func validateCaps(field string, caps []string) []error {
	if err := CheckCount(field, len(caps), MaxCapabilities); err != nil {
		return []error{err}
	}
	var errs []error
	for i, c := range caps {
		if _, ok := NormalizeCapability(c); !ok {
			errs = append(errs, fieldErr(fmt.Sprintf("%s[%d]", field, i), c,
				"unknown capability: want a Linux capability such as NET_ADMIN or CAP_SYS_TIME, or ALL"))
		}
	}
	return errs
}

// ValidateSysctl checks one sysctl: only the kernel parameters that are
// namespaced per container may be set (docker's list: kernel.shm*,
// kernel.msg*, kernel.sem, fs.mqueue.*, net.*); the others would change
// the whole node. net.* needs a network namespace of the container's own.
func ValidateSysctl(key string, hostNetwork bool) error {
	switch {
	case strings.HasPrefix(key, "net."):
		if hostNetwork {
			return fmt.Errorf("net.* sysctls are per network namespace, and this service uses the node's network: setting it would change the node")
		}
		return nil
	case key == "kernel.sem", strings.HasPrefix(key, "kernel.shm"), strings.HasPrefix(key, "kernel.msg"),
		strings.HasPrefix(key, "fs.mqueue."):
		return nil
	}
	return fmt.Errorf("not a namespaced sysctl: only kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.* and net.* can be set per container")
}

func validateSysctls(field string, sysctls map[string]string, hostNetwork bool) []error {
	if err := CheckCount(field, len(sysctls), MaxSysctls); err != nil {
		return []error{err}
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(sysctls)) {
		v := sysctls[k]
		switch {
		case len(k) > MaxSysctlLen || len(v) > MaxSysctlLen:
			errs = append(errs, fieldErr(field+"["+k+"]", v, "key or value longer than %d bytes", MaxSysctlLen))
		case strings.ContainsAny(k, "/ \x00") || strings.ContainsAny(v, "\x00\n"):
			errs = append(errs, fieldErr(field, k, "a sysctl key is dotted words (kernel.shmmax), its value one line"))
		default:
			if err := ValidateSysctl(k, hostNetwork); err != nil {
				errs = append(errs, &FieldError{Field: field, Value: k, Err: err})
			}
		}
	}
	return errs
}

// ulimitNames are docker's ulimit names.
var ulimitNames = []string{
	"as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
	"nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
}

// ParseUlimit reads docker's NAME=SOFT[:HARD] ("nofile=1024:2048"); a
// missing hard limit equals the soft one, and -1 means unlimited.
func ParseUlimit(s string) (Ulimit, error) {
	name, limits, ok := strings.Cut(s, "=")
	if !ok || name == "" || limits == "" {
		return Ulimit{}, fmt.Errorf("want NAME=SOFT[:HARD], like nofile=1024:2048")
	}
	softText, hardText, hasHard := strings.Cut(limits, ":")
	soft, err := strconv.ParseInt(softText, 10, 64)
	if err != nil {
		return Ulimit{}, fmt.Errorf("soft limit %q: not a number", softText)
	}
	hard := soft
	if hasHard {
		if hard, err = strconv.ParseInt(hardText, 10, 64); err != nil {
			return Ulimit{}, fmt.Errorf("hard limit %q: not a number", hardText)
		}
	}
	u := Ulimit{Name: name, Soft: soft, Hard: hard}
	return u, ValidateUlimit(u)
}

// ValidateUlimit checks a name and that 0 <= soft <= hard (-1: unlimited).
func ValidateUlimit(u Ulimit) error {
	if !slices.Contains(ulimitNames, u.Name) {
		return fmt.Errorf("unknown ulimit %q: want one of %s", u.Name, strings.Join(ulimitNames, ", "))
	}
	unlimited := func(v int64) bool { return v == -1 }
	switch {
	case u.Soft < -1 || u.Hard < -1:
		return fmt.Errorf("%s: limits must be at least 0 (-1: unlimited)", u.Name)
	case unlimited(u.Hard):
		return nil
	case unlimited(u.Soft) || u.Soft > u.Hard:
		return fmt.Errorf("%s: soft limit %d is above the hard limit %d", u.Name, u.Soft, u.Hard)
	}
	return nil
}

// FormatUlimit writes u as NAME=SOFT:HARD.
func FormatUlimit(u Ulimit) string { return fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard) }

func validateUlimits(field string, ulimits []Ulimit) []error {
	if err := CheckCount(field, len(ulimits), MaxUlimits); err != nil {
		return []error{err}
	}
	var errs []error
	seen := map[string]bool{}
	for i, u := range ulimits {
		f := fmt.Sprintf("%s[%d]", field, i)
		if err := ValidateUlimit(u); err != nil {
			errs = append(errs, &FieldError{Field: f, Value: FormatUlimit(u), Err: err})
		} else if seen[u.Name] {
			errs = append(errs, fieldErr(f, FormatUlimit(u), "%s is set twice", u.Name))
		}
		seen[u.Name] = true
	}
	return errs
}
