package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/api"
)

// List returns the containers in this runtime's namespace that carry a
// shoal task label, with their state. Running ones have their output
// attached to their logs again if this Runtime did not start them, so a
// restarted agent adopts its containers by listing them.
func (r *Runtime) List(ctx context.Context) ([]agent.Container, error) {
	ctx = r.nsCtx(ctx)
	ctrs, err := r.client.Containers(ctx, fmt.Sprintf("labels.%q", api.LabelTask))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]agent.Container, 0, len(ctrs))
	for _, ctr := range ctrs {
		c, err := r.describe(ctx, ctr)
		if errdefs.IsNotFound(err) {
			continue // removed while listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (r *Runtime) describe(ctx context.Context, ctr client.Container) (agent.Container, error) {
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return agent.Container{}, fmt.Errorf("list container %s: %w", ctr.ID(), err)
	}
	c := agent.Container{TaskID: labels[api.LabelTask], ServiceID: labels[api.LabelService]}
	task, err := r.adopt(ctx, ctr)
	if errdefs.IsNotFound(err) {
		return c, nil // created, never started (or its task was deleted)
	}
	if err != nil {
		return agent.Container{}, fmt.Errorf("list container %s: %w", ctr.ID(), err)
	}
	st, err := task.Status(ctx)
	if errdefs.IsNotFound(err) {
		return c, nil
	}
	if err != nil {
		return agent.Container{}, fmt.Errorf("list container %s: %w", ctr.ID(), err)
	}
	switch st.Status {
	case client.Running, client.Paused, client.Pausing:
		c.Running = true
	case client.Stopped:
		c.Exited = true
		c.Exit = agent.ExitStatus{Code: int32(st.ExitStatus), At: st.ExitTime, OOMKilled: r.oomKilled(ctx, ctr)}
	}
	return c, nil
}

// Logs writes the task's log lines to w (see agent.Runtime).
func (r *Runtime) Logs(ctx context.Context, taskID string, opts agent.LogOptions, w agent.LogWriter) error {
	ctx = r.nsCtx(ctx)
	current, rotated := logPaths(r.opts.LogDir, taskID)
	if _, err := r.load(ctx, taskID); errors.Is(err, agent.ErrNotFound) {
		if _, serr := os.Stat(current); serr != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	return readLogs(ctx, current, rotated, opts, w)
}
