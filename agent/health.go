package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// Prober is what a Runtime offers to run health checks: agent/containerd
// execs in the container, agent/fake scripts the results. A Runtime that
// is not a Prober runs no checks (its tasks report no health).
type Prober interface {
	// Exec runs cmd inside the task's running container, ending it when
	// ctx ends, and returns its exit code and its output (stdout and
	// stderr together, at most api.MaxProbeOutput bytes).
	Exec(ctx context.Context, taskID string, cmd []string) (code int, output string, err error)
	// ImageHealthcheck returns the HEALTHCHECK of the image's config (nil
	// when it has none). The image has been pulled.
	ImageHealthcheck(ctx context.Context, image string) (*api.Healthcheck, error)
}

// errProbeTimeout is the output of a probe cut short by its timeout.
var errProbeTimeout = errors.New("health check exceeded its timeout")

// probeCheck is a health check with its defaults filled in, ready to run.
type probeCheck struct {
	cmd         []string
	interval    time.Duration
	timeout     time.Duration
	retries     int
	startPeriod time.Duration
}

// effectiveCheck merges the spec's check over the image's, field by field
// as Docker does (a spec field left zero takes the image's); NONE in the
// spec turns both off. It returns nil when no check applies.
func effectiveCheck(spec, image *api.Healthcheck) *probeCheck {
	if api.HealthcheckDisabled(spec) {
		return nil
	}
	var h api.Healthcheck
	if image != nil {
		h = *image
	}
	if spec != nil {
		if len(spec.Test) > 0 {
			h.Test = spec.Test
		}
		h.Interval = pick(spec.Interval, h.Interval)
		h.Timeout = pick(spec.Timeout, h.Timeout)
		h.StartPeriod = pick(spec.StartPeriod, h.StartPeriod)
		if spec.Retries > 0 {
			h.Retries = spec.Retries
		}
	}
	cmd := probeCommand(h.Test)
	if cmd == nil {
		return nil
	}
	c := &probeCheck{
		cmd:         cmd,
		interval:    pick(h.Interval, api.DefaultHealthInterval).Std(),
		timeout:     pick(h.Timeout, api.DefaultHealthTimeout).Std(),
		retries:     api.DefaultHealthRetries,
		startPeriod: h.StartPeriod.Std(),
	}
	if h.Retries > 0 && h.Retries <= api.MaxHealthRetries {
		c.retries = int(h.Retries)
	}
	return c
}

func pick(v, def api.Duration) api.Duration {
	if v > 0 {
		return v
	}
	return def
}

// probeCommand is the command line of a test: CMD runs its arguments,
// CMD-SHELL runs them through /bin/sh -c; anything else runs nothing.
func probeCommand(test []string) []string {
	if len(test) < 2 {
		return nil
	}
	switch test[0] {
	case "CMD":
		return append([]string(nil), test[1:]...)
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", strings.Join(test[1:], " ")}
	}
	return nil
}

// healthTracker is the judgement of a check over its probes, as Docker's:
// a success makes the task healthy; a failure counts towards Retries
// failures in a row (which make it unhealthy), except within the start
// period of a task that was never healthy yet.
type healthTracker struct {
	check   *probeCheck
	since   time.Time // the container's start (or adoption)
	state   api.HealthState
	streak  int
	history []api.ProbeResult
}

// observe takes one probe result and reports whether the state changed.
func (h *healthTracker) observe(r api.ProbeResult) bool {
	h.history = api.AppendProbe(h.history, r)
	prev := h.state
	switch {
	case r.ExitCode == 0:
		h.state, h.streak = api.HealthHealthy, 0
	case h.state != api.HealthHealthy && r.Start.Before(h.since.Add(h.check.startPeriod)):
		// Failures in the start period do not count.
	default:
		h.streak++
		if h.streak >= h.check.retries {
			h.state = api.HealthUnhealthy
		}
	}
	return h.state != prev
}

// probeOnce runs the check's command once, bounded by its timeout.
func probeOnce(ctx context.Context, p Prober, taskID string, c *probeCheck, now func() time.Time) api.ProbeResult {
	pctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res := api.ProbeResult{Start: now()}
	code, out, err := p.Exec(pctx, taskID, c.cmd)
	res.End = now()
	switch {
	case pctx.Err() != nil && ctx.Err() == nil:
		res.ExitCode, res.Output = -1, errProbeTimeout.Error()
	case err != nil:
		res.ExitCode, res.Output = -1, err.Error()
	default:
		res.ExitCode, res.Output = code, out
	}
	return res
}

// checkFor returns the check that applies to task t (nil: none), asking
// the runtime for the image's HEALTHCHECK unless the spec decides alone.
func (r *runner) checkFor(ctx context.Context, t *api.Task) *probeCheck {
	p, ok := r.w.rt.(Prober)
	if !ok {
		return nil
	}
	spec := t.RunSpec().Healthcheck
	if api.HealthcheckDisabled(spec) || api.HealthcheckEnabled(t.RunSpec()) {
		return effectiveCheck(spec, nil)
	}
	img, err := p.ImageHealthcheck(ctx, t.RunSpec().ImageRef())
	if err != nil {
		r.log.Warn("reading the image's health check failed; running the task without one", "image", t.RunSpec().ImageRef(), "err", err)
		return effectiveCheck(spec, nil)
	}
	return effectiveCheck(spec, img)
}

// startProbes runs the task's check on its own schedule until the task
// leaves running (stopProbesLocked) or ctx ends. r.mu is held.
func (r *runner) startProbesLocked(ctx context.Context, since time.Time) {
	p, ok := r.w.rt.(Prober)
	if !ok || r.probe == nil || r.stopProbe != nil || r.status.State != api.TaskRunning {
		return
	}
	if r.status.Health == api.HealthNone {
		r.status.Health = api.HealthStarting
		r.w.report(r.id, r.task, r.status)
	}
	tr := &healthTracker{check: r.probe, since: since, state: r.status.Health, history: r.status.HealthLog}
	pctx, cancel := context.WithCancel(ctx)
	r.stopProbe = cancel
	go r.probeLoop(pctx, p, tr)
}

// stopProbesLocked cancels the task's probes. r.mu is held.
func (r *runner) stopProbesLocked() {
	if r.stopProbe != nil {
		r.stopProbe()
		r.stopProbe = nil
	}
}

func (r *runner) probeLoop(ctx context.Context, p Prober, tr *healthTracker) {
	timer := time.NewTimer(tr.check.interval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		res := probeOnce(ctx, p, r.id, tr.check, r.w.now)
		if ctx.Err() != nil {
			return
		}
		if tr.observe(res) {
			r.healthChanged(ctx, tr.state, tr.history)
		}
		timer.Reset(tr.check.interval)
	}
}

// healthChanged reports a new health state with the probes that led to
// it, in the same status batches as every other change. An unhealthy task
// is then failed and stopped (stepSick), and its restart policy
// decides its replacement, as in Swarm.
func (r *runner) healthChanged(ctx context.Context, state api.HealthState, history []api.ProbeResult) {
	r.mu.Lock()
	if ctx.Err() != nil || r.status.State != api.TaskRunning {
		r.mu.Unlock()
		return
	}
	st := r.status
	st.Health = state
	st.HealthLog = append([]api.ProbeResult(nil), history...)
	r.status = st
	r.w.report(r.id, r.task, st)
	if state == api.HealthUnhealthy {
		r.f.unhealthy = true
	}
	r.mu.Unlock()
	r.log.Info("health changed", "health", string(state))
	r.poke()
}

// failUnhealthy ends a task whose check said unhealthy: it is failed
// first (so that its replacement need not wait for the stop), then its
// container is stopped within the spec's grace.
func (r *runner) failUnhealthy(ctx context.Context, t *api.Task) {
	r.mu.Lock()
	msg := "unhealthy"
	if n := len(r.status.HealthLog); n > 0 {
		last := r.status.HealthLog[n-1]
		msg = fmt.Sprintf("unhealthy: health check exited %d: %s", last.ExitCode, firstLine(last.Output))
	}
	r.setLocked(api.TaskFailed, msg, errContainerUnhealthy)
	r.mu.Unlock()
	if err := r.w.rt.Stop(ctx, r.id, stopGrace(t)); err != nil && !errors.Is(err, ErrNotFound) && ctx.Err() == nil {
		r.log.Warn("stopping the unhealthy container failed; it is removed when the task is shut down", "err", err)
	}
}

// errContainerUnhealthy is the error of a task failed by its health check.
var errContainerUnhealthy = errors.New("task: container unhealthy")

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	const max = 200
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
