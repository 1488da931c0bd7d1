package api

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Limits on what a request may ask for. Each one keeps a hostile or
// mistaken value from costing a manager or an agent more than a sane
// request could: memory, log entry size, or a loop without end. They are
// listed, with their reasons, in docs/limits.md; change both together.
const (
	// MaxReplicasCeiling is the most replicas any service may have,
	// whatever the cluster's max-replicas setting says. Past it the task
	// list of one service no longer fits in one API answer.
	MaxReplicasCeiling = 100_000
	// DefaultMaxReplicas is the cluster's max-replicas setting until an
	// operator changes it (shoalctl cluster update --max-replicas).
	DefaultMaxReplicas = 10_000

	MaxNameLen       = 63  // a service name (a DNS label)
	MaxImageLen      = 512 // an image reference
	MaxArgLen        = 32 << 10
	MaxArgs          = 1024 // entries of command, args or a healthcheck test
	MaxEnv           = 1024 // entries of env
	MaxLabels        = 256  // labels of a service or a node
	MaxLabelKeyLen   = 256
	MaxLabelValueLen = 4096
	MaxMounts        = 64
	MaxPathLen       = 4096 // a mount source or target, the working directory
	MaxUserLen       = 256
	MaxConstraints   = 64
	MaxPreferences   = 8
	MaxConstraintLen = 1024 // one constraint or preference
	MaxDependsOn     = 64
	// MaxSpecBytes bounds the strings of one spec added up: a spec is
	// written into the log with every change of its service.
	MaxSpecBytes = 256 << 10

	// MaxDuration bounds every delay, timeout, interval and grace period.
	MaxDuration = Duration(24 * time.Hour)
	// MaxRestartWindow bounds the window restart attempts are counted in.
	MaxRestartWindow = Duration(30 * 24 * time.Hour)
	// MinHealthInterval is the shortest healthcheck interval or timeout
	// (as docker's), so a probe cannot run in a tight loop.
	MinHealthInterval = Duration(time.Millisecond)
	// MaxRestartAttempts bounds restart_policy.max_attempts: each slot keeps
	// that many ended tasks to count them.
	MaxRestartAttempts = 100
	MaxHealthRetries   = 100

	// Resources of one task. With MaxReplicasCeiling replicas a service's
	// total stays far inside int64 (100,000 × 64 TiB < 2^63).
	MaxNanoCPUs    = 4096 * nanoPerCPU
	MaxMemoryBytes = 64 << 40

	// MaxRefLen bounds a name, id, id prefix or hostname a request looks
	// an object up by.
	MaxRefLen = 256
	// MaxFilters and MaxFilterLen bound an events request.
	MaxFilters   = 32
	MaxFilterLen = 512
	// MaxLogTail is the most lines per task a logs request may ask the end
	// of (-1 asks for all lines).
	MaxLogTail = 100_000
	// MaxAddrLen bounds a host:port address.
	MaxAddrLen = 256
	// MaxManagerIDLen bounds a manager's id.
	MaxManagerIDLen = 128
)

// maxErrors is how many problems one validation reports; a spec with a
// thousand bad entries gets the first ones and a count of the rest.
const maxErrors = 20

// maxShownValue is how much of a value an error message quotes.
const maxShownValue = 64

// shownValue cuts v to what an error message can carry, at a character
// boundary: a value sent to hurt the server (a megabyte name) is named by
// its start and its size.
func shownValue(v string) (string, bool) {
	if len(v) <= maxShownValue {
		return v, false
	}
	cut := maxShownValue
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut], true
}

// CheckLen rejects a value longer than max bytes.
func CheckLen(field, value string, max int) error {
	if len(value) > max {
		return fieldErr(field, value, "%d bytes, at most %d allowed", len(value), max)
	}
	return nil
}

// CheckCount rejects a list of n entries when more than max are allowed.
func CheckCount(field string, n, max int) error {
	if n > max {
		return fieldErr(field, strconv.Itoa(n)+" entries", "at most %d allowed", max)
	}
	return nil
}

// checkRange rejects a number outside [lo, hi].
func checkRange(field string, v, lo, hi int64, format func(int64) string) error {
	switch {
	case v < 0 && lo >= 0:
		return fieldErr(field, format(v), "must not be negative")
	case v < lo:
		return fieldErr(field, format(v), "below the smallest value, %s", format(lo))
	case v > hi:
		return fieldErr(field, format(v), "above the largest value, %s", format(hi))
	}
	return nil
}

// checkDuration rejects a negative duration or one above max.
func checkDuration(field string, d, max Duration) error {
	switch {
	case d < 0:
		return fieldErr(field, d.Std().String(), "must not be negative")
	case d > max:
		return fieldErr(field, d.Std().String(), "longer than %s, the most allowed", max.Std())
	}
	return nil
}

// ValidateReplicas checks a replica count against the cluster's
// max-replicas setting (see ClusterSettings.ReplicaLimit).
func ValidateReplicas(field string, replicas, max uint64) error {
	if replicas > max {
		return fieldErr(field, strconv.FormatUint(replicas, 10),
			"more than the cluster's max-replicas, %d (an operator can raise it up to %d with: shoalctl cluster update --max-replicas N)",
			max, MaxReplicasCeiling)
	}
	return nil
}

// ValidateRef checks a name, id, id prefix or hostname a request looks an
// object up by. required says whether it may be empty.
func ValidateRef(field, ref string, required bool) error {
	if ref == "" {
		if required {
			return fieldErr(field, ref, "missing")
		}
		return nil
	}
	return CheckLen(field, ref, MaxRefLen)
}

// ValidateLogTail checks how many lines per task a logs request asks for.
func ValidateLogTail(tail int64) error {
	if tail < -1 || tail > MaxLogTail {
		return fieldErr("tail", strconv.FormatInt(tail, 10), "want -1 (all lines) or 0 to %d lines per task", MaxLogTail)
	}
	return nil
}

// ValidateFilterList checks the size of a list of filters; the grammar of
// each is the server's.
func ValidateFilterList(filters []string) error {
	if err := CheckCount("filters", len(filters), MaxFilters); err != nil {
		return err
	}
	for i, f := range filters {
		if err := CheckLen(fmt.Sprintf("filters[%d]", i), f, MaxFilterLen); err != nil {
			return err
		}
	}
	return nil
}
