package containerd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/api"
)

var _ agent.Prober = (*Runtime)(nil)

// execSeq numbers the exec processes of this agent: a process ID must be
// unique within its container.
var execSeq atomic.Uint64

// execKillWait bounds the wait for a probe process killed at its timeout.
const execKillWait = 5 * time.Second

// Exec runs cmd in the task's running container as a process beside its
// main one, with the container's environment, user and working directory,
// and returns its exit code and (bounded) output. When ctx ends the process
// is killed.
func (r *Runtime) Exec(ctx context.Context, taskID string, cmd []string) (int, string, error) {
	if len(cmd) == 0 {
		return 0, "", fmt.Errorf("exec in task %s: empty command", taskID)
	}
	// The process is cleaned up with a context of its own: ctx may be
	// over (the probe's timeout) when that happens.
	nctx := r.nsCtx(context.WithoutCancel(ctx))
	ctr, err := r.load(nctx, taskID)
	if err != nil {
		return 0, "", err
	}
	spec, err := ctr.Spec(nctx)
	if err != nil {
		return 0, "", fmt.Errorf("exec in task %s: read spec: %w", taskID, err)
	}
	task, err := ctr.Task(nctx, nil)
	if err != nil {
		return 0, "", fmt.Errorf("exec in task %s: %w", taskID, err)
	}
	pspec := *spec.Process
	pspec.Args = cmd
	pspec.Terminal = false
	id := fmt.Sprintf("health-%d", execSeq.Add(1))
	out := &boundedBuffer{max: api.MaxProbeOutput}
	dir := filepath.Join(r.fifoDir(taskID), id)
	defer os.RemoveAll(dir)
	proc, err := task.Exec(nctx, id, &pspec, cio.NewCreator(cio.WithStreams(nil, out, out), cio.WithFIFODir(dir)))
	if err != nil {
		return 0, "", fmt.Errorf("exec in task %s: %w", taskID, err)
	}
	defer func() {
		if _, err := proc.Delete(nctx); err != nil && !errdefs.IsNotFound(err) {
			r.logger.Warn("deleting a health check process failed", "task_id", taskID, "err", err)
		}
	}()
	exitC, err := proc.Wait(nctx)
	if err != nil {
		return 0, "", fmt.Errorf("exec in task %s: %w", taskID, err)
	}
	if err := proc.Start(nctx); err != nil {
		return 0, "", fmt.Errorf("exec in task %s: start: %w", taskID, err)
	}
	select {
	case st := <-exitC:
		code, _, err := st.Result()
		if err != nil {
			return 0, "", fmt.Errorf("exec in task %s: %w", taskID, err)
		}
		proc.IO().Wait()
		return int(code), out.String(), nil
	case <-ctx.Done():
	}
	if err := proc.Kill(nctx, syscall.SIGKILL); err != nil && !errdefs.IsNotFound(err) {
		return 0, "", fmt.Errorf("exec in task %s: kill at timeout: %w", taskID, err)
	}
	select {
	case <-exitC:
	case <-time.After(execKillWait):
	}
	proc.IO().Cancel()
	return 0, "", fmt.Errorf("exec in task %s: %w", taskID, ctx.Err())
}

// boundedBuffer keeps the first max bytes written to it and drops the rest
// (a probe that prints without end must not grow the agent).
type boundedBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *boundedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - len(w.b); room > 0 {
		w.b = append(w.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (w *boundedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// imageHealth is the part of a Docker image config that holds HEALTHCHECK
// (the OCI image spec has no field for it; Docker writes it there, with
// durations in nanoseconds).
type imageHealth struct {
	Config struct {
		Healthcheck *struct {
			Test        []string      `json:"Test"`
			Interval    time.Duration `json:"Interval"`
			Timeout     time.Duration `json:"Timeout"`
			StartPeriod time.Duration `json:"StartPeriod"`
			Retries     int           `json:"Retries"`
		} `json:"Healthcheck"`
	} `json:"config"`
}

// ImageHealthcheck reads the HEALTHCHECK of a pulled image's config.
func (r *Runtime) ImageHealthcheck(ctx context.Context, image string) (*api.Healthcheck, error) {
	ctx = r.nsCtx(ctx)
	name, err := ref(image)
	if err != nil {
		return nil, err
	}
	img, err := r.client.GetImage(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", name, err)
	}
	desc, err := img.Config(ctx)
	if err != nil {
		return nil, fmt.Errorf("config of image %q: %w", name, err)
	}
	if desc.Size > 4<<20 {
		return nil, fmt.Errorf("config of image %q is %d bytes, more than the 4 MiB read", name, desc.Size)
	}
	b, err := content.ReadBlob(ctx, img.ContentStore(), desc)
	if err != nil {
		return nil, fmt.Errorf("config of image %q: %w", name, err)
	}
	return parseImageHealth(b)
}

func parseImageHealth(b []byte) (*api.Healthcheck, error) {
	var cfg imageHealth
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	h := cfg.Config.Healthcheck
	if h == nil || len(h.Test) == 0 {
		return nil, nil
	}
	out := &api.Healthcheck{
		Test: h.Test, Interval: api.Duration(h.Interval), Timeout: api.Duration(h.Timeout),
		StartPeriod: api.Duration(h.StartPeriod),
	}
	if h.Retries > 0 {
		out.Retries = uint64(h.Retries)
	}
	return out, nil
}
