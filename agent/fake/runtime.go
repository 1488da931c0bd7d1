// Package fake is a scripted agent.Runtime for tests and large simulations.
// It starts nothing: it keeps a table of "containers" in memory, answers
// every call the way a real runtime would, records every call it was asked
// to make, and lets a test script pulls, creates, starts and exits per task
// or per image (errors, delays, exit codes, OOM kills).
//
// It is a fake at the Runtime seam: code above it (the agent) is real.
package fake

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/api"
)

// ErrExists is returned by Create for a task that already has a container.
var ErrExists = errors.New("container already exists")

// ErrNotCreated is returned by Start for a container that is not in the
// created state (already running or exited).
var ErrNotCreated = errors.New("container is not in the created state")

// Script says how the fake behaves for a task or an image. The zero value
// succeeds at once and runs until stopped.
type Script struct {
	PullErr   error
	PullDelay time.Duration
	CreateErr error
	StartErr  error
	// StartDelay is how long Start takes.
	StartDelay time.Duration
	// RunFor > 0 makes the container exit on its own after that long, with
	// ExitCode (and OOMKilled).
	RunFor    time.Duration
	ExitCode  int32
	OOMKilled bool
	// IgnoreSIGTERM makes Stop wait the whole grace period before the
	// "SIGKILL" ends the container (exit code 137).
	IgnoreSIGTERM bool
	// Logs are the lines the container "wrote" (stream stdout).
	Logs []string
	// Healthcheck is the image's own HEALTHCHECK (scripted per image).
	Healthcheck *api.Healthcheck
	// ProbeExit and ProbeOutput are what every health probe of the
	// container returns, until SetProbe says otherwise.
	ProbeExit   int
	ProbeOutput string
}

// Call is one call the fake was asked to make.
type Call struct {
	Op     string // pull | create | start | stop | remove
	Target string // image for pull, task ID otherwise
	At     time.Time
	Err    error
}

type state int

const (
	created state = iota
	running
	exited
)

type container struct {
	task    *api.Task
	net     agent.ContainerNetwork
	secrets []api.SecretFile
	state   state
	exit    agent.ExitStatus
	exitCh  chan struct{} // closed when the container exits
	starts  int
	logs    []string
	logged  chan struct{} // closed (and replaced) when Print adds lines
	stopped chan struct{} // closed by Stop to end a running container
	probe   *probeScript  // set by SetProbe, else the script's
}

// Runtime is the fake. It is safe for concurrent use.
type Runtime struct {
	mu         sync.Mutex
	now        func() time.Time
	images     map[string]Script
	tasks      map[string]Script
	containers map[string]*container
	pulled     map[string]bool
	pullAuth   map[string]*api.RegistryAuth // image → credential of its last pull
	calls      []Call
	starts     map[string]int // task ID → Start calls that succeeded, kept after Remove
}

var _ agent.Runtime = (*Runtime)(nil)

// New returns an empty fake runtime.
func New() *Runtime {
	return &Runtime{
		now:        time.Now,
		images:     make(map[string]Script),
		tasks:      make(map[string]Script),
		containers: make(map[string]*container),
		pulled:     make(map[string]bool),
		pullAuth:   make(map[string]*api.RegistryAuth),
		starts:     make(map[string]int),
	}
}

// ScriptImage sets how containers of image behave (unless a task script
// says otherwise).
func (r *Runtime) ScriptImage(image string, s Script) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.images[image] = s
}

// ScriptTask sets how the container of one task behaves.
func (r *Runtime) ScriptTask(taskID string, s Script) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tasks[taskID] = s
}

// scriptFor returns the task's script, else its image's. r.mu is held.
func (r *Runtime) scriptFor(taskID, image string) Script {
	if s, ok := r.tasks[taskID]; ok {
		return s
	}
	return r.images[image]
}

func (r *Runtime) record(op, target string, err error) {
	r.calls = append(r.calls, Call{Op: op, Target: target, At: r.now(), Err: err})
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Pull "fetches" image, after the scripted delay and failing as scripted.
func (r *Runtime) Pull(ctx context.Context, image string, opts ...agent.PullOption) error {
	if image == "" {
		return errors.New("fake runtime: pull: image is empty")
	}
	r.mu.Lock()
	s := r.images[image]
	r.mu.Unlock()
	err := sleep(ctx, s.PullDelay)
	if err == nil && s.PullErr != nil {
		err = fmt.Errorf("pull %s: %w", image, s.PullErr)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("pull", image, err)
	if err == nil {
		r.pulled[image] = true
		r.pullAuth[image] = agent.PullOptionsOf(opts).Auth
	}
	return err
}

// Create makes the container of t, in the created state.
func (r *Runtime) Create(ctx context.Context, t *api.Task, opts ...agent.CreateOption) error {
	if t == nil || t.ID == "" {
		return errors.New("fake runtime: create: task has no ID")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.scriptFor(t.ID, t.RunSpec().Image)
	var err error
	switch {
	case r.containers[t.ID] != nil:
		err = fmt.Errorf("create %s: %w", t.ID, ErrExists)
	case !r.pulled[t.RunSpec().ImageRef()]:
		err = fmt.Errorf("create %s: image %q was not pulled", t.ID, t.RunSpec().ImageRef())
	case s.CreateErr != nil:
		err = fmt.Errorf("create %s: %w", t.ID, s.CreateErr)
	}
	r.record("create", t.ID, err)
	if err != nil {
		return err
	}
	o := agent.CreateOptionsOf(opts)
	r.containers[t.ID] = &container{
		task: t.Clone(), net: o.Network, secrets: cloneFiles(o.Secrets), state: created, exitCh: make(chan struct{}),
		stopped: make(chan struct{}), logs: append([]string(nil), s.Logs...),
		logged: make(chan struct{}),
	}
	return nil
}

// Start runs the created container of taskID.
func (r *Runtime) Start(ctx context.Context, taskID string) error {
	r.mu.Lock()
	c := r.containers[taskID]
	var s Script
	if c != nil {
		s = r.scriptFor(taskID, c.task.RunSpec().Image)
	}
	r.mu.Unlock()
	if c == nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		err := fmt.Errorf("start %s: %w", taskID, agent.ErrNotFound)
		r.record("start", taskID, err)
		return err
	}
	err := sleep(ctx, s.StartDelay)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil:
	case r.containers[taskID] != c:
		err = fmt.Errorf("start %s: %w", taskID, agent.ErrNotFound)
	case c.state != created:
		err = fmt.Errorf("start %s: %w", taskID, ErrNotCreated)
	case s.StartErr != nil:
		err = fmt.Errorf("start %s: %w", taskID, s.StartErr)
	}
	r.record("start", taskID, err)
	if err != nil {
		return err
	}
	c.state = running
	c.starts++
	r.starts[taskID]++
	if s.RunFor > 0 {
		go r.exitAfter(c, s)
	}
	return nil
}

// exitAfter ends c on its own after s.RunFor, unless it was stopped first.
func (r *Runtime) exitAfter(c *container, s Script) {
	t := time.NewTimer(s.RunFor)
	defer t.Stop()
	select {
	case <-t.C:
		r.mu.Lock()
		defer r.mu.Unlock()
		r.exitLocked(c, s.ExitCode, s.OOMKilled)
	case <-c.exitCh:
	}
}

// exitLocked moves c to exited once. r.mu is held.
func (r *Runtime) exitLocked(c *container, code int32, oom bool) {
	if c.state == exited {
		return
	}
	c.state = exited
	c.exit = agent.ExitStatus{Code: code, OOMKilled: oom, At: r.now()}
	close(c.exitCh)
}

// Wait blocks until the container of taskID exits (or ctx ends).
func (r *Runtime) Wait(ctx context.Context, taskID string) (agent.ExitStatus, error) {
	r.mu.Lock()
	c := r.containers[taskID]
	r.mu.Unlock()
	if c == nil {
		return agent.ExitStatus{}, fmt.Errorf("wait %s: %w", taskID, agent.ErrNotFound)
	}
	select {
	case <-c.exitCh:
		r.mu.Lock()
		defer r.mu.Unlock()
		return c.exit, nil
	case <-ctx.Done():
		return agent.ExitStatus{}, ctx.Err()
	}
}

// Stop ends a running container: at once (exit 143, as after SIGTERM) or,
// if scripted to ignore SIGTERM, after grace (exit 137).
func (r *Runtime) Stop(ctx context.Context, taskID string, grace time.Duration) error {
	r.mu.Lock()
	c := r.containers[taskID]
	var s Script
	if c != nil {
		s = r.scriptFor(taskID, c.task.RunSpec().Image)
	}
	if c == nil {
		err := fmt.Errorf("stop %s: %w", taskID, agent.ErrNotFound)
		r.record("stop", taskID, err)
		r.mu.Unlock()
		return err
	}
	r.record("stop", taskID, nil)
	if c.state != running {
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	code := int32(143)
	if s.IgnoreSIGTERM {
		code = 137
		if err := sleep(ctx, grace); err != nil {
			return fmt.Errorf("stop %s: %w", taskID, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exitLocked(c, code, false)
	return nil
}

// Remove deletes the container of taskID; a missing one is not an error.
func (r *Runtime) Remove(ctx context.Context, taskID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[taskID]
	var err error
	if c != nil && c.state == running {
		err = fmt.Errorf("remove %s: container is running: stop it first", taskID)
	}
	r.record("remove", taskID, err)
	if err != nil {
		return err
	}
	delete(r.containers, taskID)
	return nil
}

// List returns the containers, sorted by task ID.
func (r *Runtime) List(ctx context.Context) ([]agent.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]agent.Container, 0, len(r.containers))
	for id, c := range r.containers {
		out = append(out, agent.Container{
			TaskID: id, ServiceID: c.task.ServiceID,
			Running: c.state == running, Exited: c.state == exited, Exit: c.exit,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TaskID < out[j].TaskID })
	return out, nil
}

// Logs writes the scripted lines of the task (the last tail of them) and
// any printed since; with follow it then writes each line printed later,
// until ctx ends or the container exits.
func (r *Runtime) Logs(ctx context.Context, taskID string, opts agent.LogOptions, w agent.LogWriter) error {
	r.mu.Lock()
	c := r.containers[taskID]
	if c == nil {
		r.mu.Unlock()
		return fmt.Errorf("logs %s: %w", taskID, agent.ErrNotFound)
	}
	lines, logged := c.logs, c.logged
	r.mu.Unlock()
	next := len(lines)
	if opts.Tail >= 0 && int64(len(lines)) > opts.Tail {
		lines = lines[int64(len(lines))-opts.Tail:]
	}
	if err := r.writeLines(w, lines); err != nil || !opts.Follow {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-logged:
		case <-c.exitCh:
		}
		r.mu.Lock()
		lines, logged = c.logs[next:], c.logged
		next = len(c.logs)
		ended := c.state == exited
		r.mu.Unlock()
		if err := r.writeLines(w, lines); err != nil || ended {
			return err
		}
	}
}

func (r *Runtime) writeLines(w agent.LogWriter, lines []string) error {
	for _, l := range lines {
		if err := w.WriteLine("stdout", r.now(), []byte(l)); err != nil {
			return err
		}
	}
	return nil
}

// Print adds lines to the output of the container of taskID, as if its
// process wrote them; followers of its logs get them at once. It reports
// whether there was a container to print them.
func (r *Runtime) Print(taskID string, lines ...string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[taskID]
	if c == nil {
		return false
	}
	c.logs = append(c.logs, lines...)
	close(c.logged)
	c.logged = make(chan struct{})
	return true
}

// Exit makes the running container of taskID exit on its own with code, as
// a crashed process would. It reports whether there was one to end.
func (r *Runtime) Exit(taskID string, code int32, oom bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[taskID]
	if c == nil || c.state != running {
		return false
	}
	r.exitLocked(c, code, oom)
	return true
}

// Calls returns a copy of every call made so far, in order.
func (r *Runtime) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// Starts returns how many times the container of taskID was started, even
// if it has since been removed.
func (r *Runtime) Starts(taskID string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.starts[taskID]
}

// Running returns the task IDs of the running containers, sorted.
func (r *Runtime) Running() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id, c := range r.containers {
		if c.state == running {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Task returns a copy of the task the container of taskID was created
// from, or nil.
func (r *Runtime) Task(taskID string) *api.Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.containers[taskID]; c != nil {
		return c.task.Clone()
	}
	return nil
}

// Network returns how the container of taskID was wired (the zero value:
// host networking, or no such container).
func (r *Runtime) Network(taskID string) agent.ContainerNetwork {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.containers[taskID]; c != nil {
		return c.net
	}
	return agent.ContainerNetwork{}
}

// Secrets returns the secret and config files the container of taskID was
// created with (nil: none, or no such container).
func (r *Runtime) Secrets(taskID string) []api.SecretFile {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.containers[taskID]; c != nil {
		return cloneFiles(c.secrets)
	}
	return nil
}

// PullAuth returns the registry credential the last pull of image used
// (nil: none, or never pulled).
func (r *Runtime) PullAuth(image string) *api.RegistryAuth {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.pullAuth[image]; a != nil {
		c := *a
		return &c
	}
	return nil
}

func cloneFiles(fs []api.SecretFile) []api.SecretFile {
	if fs == nil {
		return nil
	}
	out := make([]api.SecretFile, len(fs))
	for i, f := range fs {
		f.Data = append([]byte(nil), f.Data...)
		out[i] = f
	}
	return out
}

// Slot names a task's service and slot, for "one running per slot" checks.
func Slot(t *api.Task) string {
	return t.ServiceID + "/" + strconv.FormatUint(t.Slot, 10)
}
