package fake

import (
	"context"
	"fmt"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/api"
)

var _ agent.Prober = (*Runtime)(nil)

// probeScript is what a container's health probes return.
type probeScript struct {
	exit   int
	output string
}

// Exec "runs" a health probe in the running container of taskID: it
// returns the scripted exit code and output (the script's ProbeExit and
// ProbeOutput, or what SetProbe set last).
func (r *Runtime) Exec(ctx context.Context, taskID string, cmd []string) (int, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[taskID]
	var err error
	switch {
	case c == nil:
		err = fmt.Errorf("exec in %s: %w", taskID, agent.ErrNotFound)
	case c.state != running:
		err = fmt.Errorf("exec in %s: container is not running", taskID)
	case len(cmd) == 0:
		err = fmt.Errorf("exec in %s: empty command", taskID)
	}
	r.record("exec", taskID, err)
	if err != nil {
		return 0, "", err
	}
	if c.probe != nil {
		return c.probe.exit, c.probe.output, nil
	}
	s := r.scriptFor(taskID, c.task.RunSpec().Image)
	return s.ProbeExit, s.ProbeOutput, nil
}

// ImageHealthcheck returns the HEALTHCHECK scripted for image (by the name
// the spec gives, digest pin or not).
func (r *Runtime) ImageHealthcheck(ctx context.Context, image string) (*api.Healthcheck, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.images[image]; ok && s.Healthcheck != nil {
		h := *s.Healthcheck
		return &h, nil
	}
	return nil, nil
}

// SetProbe makes the health probes of taskID's container return exit and
// output from now on; it reports whether the container exists.
func (r *Runtime) SetProbe(taskID string, exit int, output string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[taskID]
	if c == nil {
		return false
	}
	c.probe = &probeScript{exit: exit, output: output}
	return true
}

// Execs counts the probes run in taskID's container.
func (r *Runtime) Execs(taskID string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if c.Op == "exec" && c.Target == taskID && c.Err == nil {
			n++
		}
	}
	return n
}
