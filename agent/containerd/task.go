package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	"github.com/shoal-sched/shoal/agent"
)

const (
	// outputDrain bounds the wait for a container's last output after it
	// exited.
	outputDrain = 5 * time.Second
	// killWait bounds the wait for an exit after SIGKILL.
	killWait = 30 * time.Second
)

// taskIO copies a task's stdout and stderr into its log file.
type taskIO struct {
	log            *logFile
	stdout, stderr *streamWriter
	io             cio.IO
	done           chan struct{} // closed once the output is all in the log
}

func (r *Runtime) newTaskIO(taskID string, maxBytes int64, keepRotated bool) (*taskIO, error) {
	current, _ := logPaths(r.opts.LogDir, taskID)
	lf, err := openLogFile(current, maxBytes, r.logger)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", taskID, err)
	}
	lf.dropRotated = !keepRotated
	return &taskIO{
		log:    lf,
		stdout: &streamWriter{log: lf, stream: "stdout"},
		stderr: &streamWriter{log: lf, stream: "stderr"},
		done:   make(chan struct{}),
	}, nil
}

// run waits for the copying to end, then writes the last partial lines.
func (tio *taskIO) run(io cio.IO) {
	tio.io = io
	go func() {
		io.Wait()
		tio.stdout.flush()
		tio.stderr.flush()
		tio.log.Close()
		close(tio.done)
	}()
}

// detach stops copying but leaves the FIFOs for a later attach.
func (tio *taskIO) detach() {
	if tio.io == nil {
		tio.log.Close()
		return
	}
	tio.io.Cancel()
	tio.wait(outputDrain)
}

// wait waits up to d for the output to be copied.
func (tio *taskIO) wait(d time.Duration) bool {
	select {
	case <-tio.done:
		return true
	case <-time.After(d):
		return false
	}
}

// openTaskIO opens the log of a task's container with the limits its
// labels give, and returns the cio options that feed it: stdout and stderr,
// or the one stream of a terminal.
func (r *Runtime) openTaskIO(ctx context.Context, ctr client.Container) (*taskIO, []cio.Opt, error) {
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("task %s: labels: %w", ctr.ID(), err)
	}
	maxBytes, keep := r.logLimits(labels)
	tio, err := r.newTaskIO(ctr.ID(), maxBytes, keep)
	if err != nil {
		return nil, nil, err
	}
	if spec, err := ctr.Spec(ctx); err == nil && spec.Process != nil && spec.Process.Terminal {
		return tio, []cio.Opt{cio.WithStreams(nil, tio.stdout, nil), cio.WithTerminal}, nil
	}
	return tio, []cio.Opt{cio.WithStreams(nil, tio.stdout, tio.stderr)}, nil
}

func fifoRoot(stateDir string) string { return filepath.Join(stateDir, "fifo") }

func (r *Runtime) fifoDir(taskID string) string {
	return filepath.Join(fifoRoot(r.opts.StateDir), taskID)
}

// Start starts the created container of a task, its output going to the
// task's log.
func (r *Runtime) Start(ctx context.Context, taskID string) error {
	ctx = r.nsCtx(ctx)
	ctr, err := r.load(ctx, taskID)
	if err != nil {
		return err
	}
	tio, streams, err := r.openTaskIO(ctx, ctr)
	if err != nil {
		return err
	}
	creator := cio.NewCreator(append(streams, cio.WithFIFODir(r.fifoDir(taskID)))...)
	task, err := ctr.NewTask(ctx, creator)
	if err != nil {
		tio.log.Close()
		return fmt.Errorf("start task %s: %w", taskID, err)
	}
	tio.run(task.IO())
	r.mu.Lock()
	if old := r.ios[taskID]; old != nil {
		defer old.detach()
	}
	r.ios[taskID] = tio
	r.mu.Unlock()
	if err := task.Start(ctx); err != nil {
		err = fmt.Errorf("start task %s: %w", taskID, err)
		if _, derr := task.Delete(ctx, client.WithProcessKill); derr != nil && !errdefs.IsNotFound(derr) {
			err = errors.Join(err, fmt.Errorf("delete failed task %s: %w", taskID, derr))
		}
		return err
	}
	return nil
}

// adopt returns the task of a container, attaching its output to the log
// if it is running and this Runtime does not copy it yet (after a restart).
func (r *Runtime) adopt(ctx context.Context, ctr client.Container) (client.Task, error) {
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ios[ctr.ID()] != nil {
		return task, nil
	}
	st, err := task.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.Status != client.Running && st.Status != client.Paused {
		// An exited task's FIFOs have no writer left: opening them would
		// block forever.
		return task, nil
	}
	tio, streams, err := r.openTaskIO(ctx, ctr)
	if err != nil {
		return nil, err
	}
	attached, err := ctr.Task(ctx, cio.NewAttach(streams...))
	if err != nil {
		tio.log.Close()
		return nil, fmt.Errorf("attach output of task %s: %w", ctr.ID(), err)
	}
	tio.run(attached.IO())
	r.ios[ctr.ID()] = tio
	r.logger.Info("adopted container", "task_id", ctr.ID())
	return attached, nil
}

// Wait blocks until the task's container exits and says how.
func (r *Runtime) Wait(ctx context.Context, taskID string) (agent.ExitStatus, error) {
	ctx = r.nsCtx(ctx)
	ctr, err := r.load(ctx, taskID)
	if err != nil {
		return agent.ExitStatus{}, err
	}
	task, err := r.adopt(ctx, ctr)
	if errdefs.IsNotFound(err) {
		return agent.ExitStatus{}, fmt.Errorf("wait for task %s: %w", taskID, ErrNotStarted)
	}
	if err != nil {
		return agent.ExitStatus{}, fmt.Errorf("wait for task %s: %w", taskID, err)
	}
	exitC, err := task.Wait(ctx)
	if err != nil {
		return agent.ExitStatus{}, fmt.Errorf("wait for task %s: %w", taskID, err)
	}
	var st client.ExitStatus
	select {
	case st = <-exitC:
	case <-ctx.Done():
		return agent.ExitStatus{}, fmt.Errorf("wait for task %s: %w", taskID, ctx.Err())
	}
	code, at, err := st.Result()
	if err != nil {
		return agent.ExitStatus{}, fmt.Errorf("wait for task %s: %w", taskID, err)
	}
	r.drainOutput(taskID)
	return agent.ExitStatus{Code: int32(code), OOMKilled: r.oomKilled(ctx, ctr), At: at}, nil
}

// drainOutput waits (boundedly) until the exited task's output is all in
// its log, so that Logs right after Wait sees the last lines.
func (r *Runtime) drainOutput(taskID string) {
	r.mu.Lock()
	tio := r.ios[taskID]
	r.mu.Unlock()
	if tio != nil && !tio.wait(outputDrain) {
		r.logger.Warn("container output still open after exit", "task_id", taskID)
	}
}

// oomKilled reports whether the kernel OOM-killed a process of the
// container. An unreadable count is logged and taken as no OOM kill: the
// exit code still tells that the container died.
func (r *Runtime) oomKilled(ctx context.Context, ctr client.Container) bool {
	spec, err := ctr.Spec(ctx)
	if err == nil && spec.Linux == nil {
		err = errors.New("spec has no linux section")
	}
	var n uint64
	if err == nil {
		n, err = oomKills(spec.Linux.CgroupsPath)
	}
	if err != nil {
		r.logger.Warn("cannot tell whether the container was OOM-killed", "task_id", ctr.ID(), "err", err)
		return false
	}
	return n > 0
}

// Stop sends SIGTERM to the task's container, then SIGKILL to all its
// processes once grace (the runtime's default if grace <= 0) has passed.
// Stopping a container that is not running is not an error.
func (r *Runtime) Stop(ctx context.Context, taskID string, grace time.Duration) error {
	ctx = r.nsCtx(ctx)
	if grace <= 0 {
		grace = r.opts.StopGrace
	}
	ctr, err := r.load(ctx, taskID)
	if err != nil {
		return err
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop task %s: %w", taskID, err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return fmt.Errorf("stop task %s: %w", taskID, err)
	}
	if st.Status == client.Stopped {
		return nil
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	exitC, err := task.Wait(waitCtx)
	if err != nil {
		return fmt.Errorf("stop task %s: %w", taskID, err)
	}
	sig, err := client.GetStopSignal(ctx, ctr, syscall.SIGTERM)
	if err != nil {
		sig = syscall.SIGTERM
	}
	if err := task.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop task %s: %v: %w", taskID, sig, err)
	}
	graceTimer := time.NewTimer(grace)
	defer graceTimer.Stop()
	select {
	case <-exitC:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-graceTimer.C:
	}
	r.logger.Info("container ignored SIGTERM, killing it", "task_id", taskID, "grace", grace)
	if err := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop task %s: SIGKILL: %w", taskID, err)
	}
	killTimer := time.NewTimer(killWait)
	defer killTimer.Stop()
	select {
	case <-exitC:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-killTimer.C:
		return fmt.Errorf("stop task %s: still running %s after SIGKILL", taskID, killWait)
	}
}

// Remove kills and deletes the task's container with its snapshot, output
// FIFOs and logs. Named volumes stay. A missing container is not an error.
func (r *Runtime) Remove(ctx context.Context, taskID string) error {
	ctx = r.nsCtx(ctx)
	ctr, err := r.load(ctx, taskID)
	if errors.Is(err, agent.ErrNotFound) {
		ctr = nil
	} else if err != nil {
		return err
	}
	if ctr != nil {
		task, err := ctr.Task(ctx, nil)
		if err == nil {
			_, err = task.Delete(ctx, client.WithProcessKill)
		}
		if err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove task %s: %w", taskID, err)
		}
	}
	r.mu.Lock()
	tio := r.ios[taskID]
	delete(r.ios, taskID)
	r.mu.Unlock()
	if tio != nil {
		tio.detach()
	}
	if ctr != nil {
		if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove container %s: %w", taskID, err)
		}
	}
	current, rotated := logPaths(r.opts.LogDir, taskID)
	var errs []error
	for _, p := range []string{current, rotated} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(r.fifoDir(taskID)); err != nil {
		errs = append(errs, err)
	}
	if err := r.unmountSecrets(taskID); err != nil {
		errs = append(errs, err)
	}
	// A shim killed with its host leaves its socket behind.
	if err := r.removeShimSocket(taskID); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove files of task %s: %w", taskID, err)
	}
	return nil
}
