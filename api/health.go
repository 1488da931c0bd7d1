package api

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// HealthState is what a task's health check last concluded. It is empty
// for a task that has no check (none in its spec, none in its image, or
// one turned off with NONE).
type HealthState string

const (
	HealthNone      HealthState = ""          // no check runs
	HealthStarting  HealthState = "starting"  // checked, not healthy yet (start period, or no success yet)
	HealthHealthy   HealthState = "healthy"   // the last probe succeeded
	HealthUnhealthy HealthState = "unhealthy" // Retries probes in a row failed
)

// Bounds of the probe history a task status carries: it goes into a Raft
// entry with every health transition.
const (
	// MaxHealthLog is the number of probe results kept, newest last.
	MaxHealthLog = 5
	// MaxProbeOutput bounds the output kept of one probe.
	MaxProbeOutput = 4 << 10
)

// Defaults of a health check, as Docker's.
const (
	DefaultHealthInterval = Duration(30 * time.Second)
	DefaultHealthTimeout  = Duration(30 * time.Second)
	DefaultHealthRetries  = 3
)

// ProbeResult is one run of a task's health command.
type ProbeResult struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exit_code"`
	Output   string    `json:"output,omitempty"`
}

// HealthcheckDisabled reports whether h turns checks off (test NONE), which
// also hides the image's own HEALTHCHECK.
func HealthcheckDisabled(h *Healthcheck) bool {
	return h != nil && len(h.Test) > 0 && h.Test[0] == "NONE"
}

// HealthcheckEnabled reports whether spec itself asks for a check: a test
// in the CMD or CMD-SHELL form.
func HealthcheckEnabled(spec *ServiceSpec) bool {
	if spec == nil || spec.Healthcheck == nil || len(spec.Healthcheck.Test) == 0 {
		return false
	}
	switch spec.Healthcheck.Test[0] {
	case "CMD", "CMD-SHELL":
		return len(spec.Healthcheck.Test) > 1
	}
	return false
}

// TaskUp reports whether t counts as up: running, and healthy when a check
// applies to it. A check applies when spec (the task's spec; nil if
// unknown) has an enabled one, or when the agent reports a health state at
// all — that is how a check from the image's own HEALTHCHECK shows. Every
// rule that counts running tasks (convergence, update progress,
// depends_on service_healthy, shoalctl's waiting) calls this function.
func TaskUp(t *Task, spec *ServiceSpec) bool {
	if t == nil || t.Status.State != TaskRunning {
		return false
	}
	if HealthcheckEnabled(spec) || t.Status.Health != HealthNone {
		return t.Status.Health == HealthHealthy
	}
	return true
}

// Equal reports whether s and o are the same status. TaskStatus holds a
// slice (HealthLog), so == does not compile on it.
func (s TaskStatus) Equal(o TaskStatus) bool {
	return s.State == o.State && s.Message == o.Message && s.Err == o.Err &&
		s.Timestamp.Equal(o.Timestamp) && s.PendingReason == o.PendingReason &&
		s.ContainerID == o.ContainerID && s.ExitCode == o.ExitCode &&
		s.Health == o.Health && slices.EqualFunc(s.HealthLog, o.HealthLog, ProbeResult.equal)
}

// AppendProbe returns log with r added last, its output cut to
// MaxProbeOutput and the oldest results dropped beyond MaxHealthLog. It
// does not change log's backing array.
func AppendProbe(log []ProbeResult, r ProbeResult) []ProbeResult {
	if len(r.Output) > MaxProbeOutput {
		r.Output = r.Output[:MaxProbeOutput]
	}
	out := make([]ProbeResult, 0, MaxHealthLog)
	if n := len(log) - (MaxHealthLog - 1); n > 0 {
		log = log[n:]
	}
	out = append(out, log...)
	return append(out, r)
}

func (r ProbeResult) equal(o ProbeResult) bool {
	return r.Start.Equal(o.Start) && r.End.Equal(o.End) && r.ExitCode == o.ExitCode && r.Output == o.Output
}

// ErrUnknownHealth: a health state name shoal does not know.
var ErrUnknownHealth = errors.New("unknown health state")

// ParseHealthState reads a health state name ("" is no check).
func ParseHealthState(s string) (HealthState, error) {
	switch h := HealthState(s); h {
	case HealthNone, HealthStarting, HealthHealthy, HealthUnhealthy:
		return h, nil
	}
	return "", fmt.Errorf("%w %q: want starting, healthy or unhealthy", ErrUnknownHealth, s)
}
