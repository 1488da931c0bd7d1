// Package containerd is the agent's real Runtime: each task runs as a
// containerd container (runc) in the agent's own containerd namespace,
// on the host's network, with its output in a rotated log file.
//
// It works with containerd 1.6 (no transfer service): images are pulled by
// this process with a resolver of its own and unpacked into the
// snapshotter. Output goes through FIFOs that the shim keeps open, so a
// container outlives the agent and a restarted agent re-attaches to it
// (List, Wait). A task is only deleted on Remove: until then its exit
// status and its cgroup's OOM-kill count stay readable.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/registry"
)

// Defaults for Options.
const (
	DefaultNamespace   = "shoal"
	DefaultSnapshotter = "overlayfs"
	DefaultStopGrace   = 10 * time.Second
	DefaultLogMaxBytes = 10 << 20
)

// runcRuntime is the containerd runtime (shim) every container uses.
const runcRuntime = "io.containerd.runc.v2"

var (
	// ErrImageNotFound is returned (wrapped) by Pull when no registry has
	// the image.
	ErrImageNotFound = errors.New("image not found")
	// ErrNotStarted is returned (wrapped) by Wait for a container that was
	// created but has no running or exited process.
	ErrNotStarted = errors.New("container not started")
)

// Options configure a Runtime.
type Options struct {
	// Address is containerd's gRPC socket (like /run/containerd/containerd.sock).
	Address string
	// Namespace is the containerd namespace of this agent (DefaultNamespace
	// if empty). Two agents must not share one on the same containerd.
	Namespace string
	// NodeID goes into every container's shoal.node label.
	NodeID string
	// NodeHostname is what {{.Node.Hostname}} renders to in hostname
	// templates (the host's name if empty).
	NodeHostname string
	// InitPath is the init --init mounts as PID 1 (DefaultInitPath if empty).
	InitPath string
	// StateDir holds the logs, the named volumes and the output FIFOs.
	StateDir string
	// SecretsRoot is where each task's tmpfs of secrets and configs is
	// mounted (DefaultSecretsRoot if empty). Keep it off the data dir: the
	// files live in memory only.
	SecretsRoot string
	// LogDir and VolumeDir override StateDir/logs and StateDir/volumes.
	LogDir    string
	VolumeDir string
	// Mirrors lists, per registry host ("docker.io", "reg:5000"), mirror
	// endpoints ("mirror:5000", "https://mirror/v2") tried before it.
	Mirrors map[string][]string
	// InsecureRegistries are hosts (host or host:port) reached over plain
	// HTTP; every other registry is reached over HTTPS.
	InsecureRegistries []string
	// DockerConfig is a docker-style config.json with registry credentials
	// ("auths"); empty means none.
	DockerConfig string
	// Snapshotter is the containerd snapshotter (DefaultSnapshotter if empty).
	Snapshotter string
	// StopGrace is used by Stop when it is given no grace (DefaultStopGrace
	// if zero).
	StopGrace time.Duration
	// LogMaxBytes is the size at which a task's log is rotated
	// (DefaultLogMaxBytes if zero).
	LogMaxBytes int64
	Logger      *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.Address == "" {
		return errors.New("containerd address is empty")
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if err := identifiers.Validate(o.Namespace); err != nil {
		return fmt.Errorf("containerd namespace %q: %w", o.Namespace, err)
	}
	if o.StateDir == "" {
		return errors.New("state dir is empty")
	}
	if o.LogDir == "" {
		o.LogDir = filepath.Join(o.StateDir, "logs")
	}
	if o.VolumeDir == "" {
		o.VolumeDir = filepath.Join(o.StateDir, "volumes")
	}
	if o.Snapshotter == "" {
		o.Snapshotter = DefaultSnapshotter
	}
	if o.SecretsRoot == "" {
		o.SecretsRoot = DefaultSecretsRoot
	}
	if o.StopGrace < 0 {
		return fmt.Errorf("stop grace %s: must not be negative", o.StopGrace)
	}
	if o.StopGrace == 0 {
		o.StopGrace = DefaultStopGrace
	}
	if o.LogMaxBytes < 0 {
		return fmt.Errorf("log max bytes %d: must not be negative", o.LogMaxBytes)
	}
	if o.LogMaxBytes == 0 {
		o.LogMaxBytes = DefaultLogMaxBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.NodeHostname == "" {
		o.NodeHostname, _ = os.Hostname()
	}
	if o.InitPath == "" {
		o.InitPath = DefaultInitPath
	}
	return nil
}

func newRegistries(o Options) (*registry.Registries, error) {
	return registry.New(registry.Options{Mirrors: o.Mirrors, Insecure: o.InsecureRegistries, DockerConfig: o.DockerConfig})
}

// Runtime implements agent.Runtime with containerd.
type Runtime struct {
	opts   Options
	client *client.Client
	regs   *registry.Registries
	logger *slog.Logger

	mu     sync.Mutex
	ios    map[string]*taskIO // output being copied into log files, by task ID
	closed bool
}

var _ agent.Runtime = (*Runtime)(nil)

// New connects to containerd and checks that it serves.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	regs, err := newRegistries(opts)
	if err != nil {
		return nil, err
	}
	for _, dir := range []string{opts.LogDir, opts.VolumeDir, fifoRoot(opts.StateDir)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("runtime state dir: %w", err)
		}
	}
	if _, err := os.Stat(strings.TrimPrefix(opts.Address, "unix://")); err != nil {
		return nil, fmt.Errorf("containerd socket %q (is containerd running?): %w", opts.Address, err)
	}
	c, err := client.New(opts.Address, client.WithDefaultNamespace(opts.Namespace), client.WithDefaultRuntime(runcRuntime))
	if err != nil {
		return nil, fmt.Errorf("containerd at %q: %w", opts.Address, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Version(pingCtx); err != nil {
		c.Close()
		return nil, fmt.Errorf("containerd at %q does not answer: %w", opts.Address, err)
	}
	return &Runtime{
		opts:   opts,
		client: c,
		regs:   regs,
		logger: opts.Logger.With("component", "containerd_runtime", "namespace", opts.Namespace),
		ios:    map[string]*taskIO{},
	}, nil
}

// Close stops copying container output and disconnects. Containers keep
// running; a new Runtime on the same namespace and state dir adopts them
// (List or Wait re-attaches their output).
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	ios := r.ios
	r.ios = map[string]*taskIO{}
	r.mu.Unlock()
	for _, tio := range ios {
		tio.detach()
	}
	return r.client.Close()
}

func (r *Runtime) nsCtx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.opts.Namespace)
}

// ref normalises an image name ("busybox" → "docker.io/library/busybox:latest").
func ref(image string) (string, error) {
	named, err := reference.ParseDockerRef(image)
	if err != nil {
		return "", fmt.Errorf("image name %q: %w", image, err)
	}
	return named.String(), nil
}

// Pull fetches and unpacks the image unless it is already unpacked.
func (r *Runtime) Pull(ctx context.Context, image string, opts ...agent.PullOption) error {
	ctx = r.nsCtx(ctx)
	name, err := ref(image)
	if err != nil {
		return err
	}
	if img, err := r.client.GetImage(ctx, name); err == nil {
		if ok, err := img.IsUnpacked(ctx, r.opts.Snapshotter); err == nil && ok {
			return nil
		}
	}
	start := time.Now()
	resolver := r.regs.Resolver()
	if a := agent.PullOptionsOf(opts).Auth; a != nil {
		resolver = r.regs.ResolverWith(a.Registry, a.Username, a.Password)
	}
	_, err = r.client.Pull(ctx, name,
		client.WithPullUnpack,
		client.WithPullSnapshotter(r.opts.Snapshotter),
		client.WithResolver(resolver),
	)
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("pull image %q: %w: %w", name, ErrImageNotFound, err)
	}
	if err != nil {
		return fmt.Errorf("pull image %q: %w", name, err)
	}
	r.logger.Info("pulled image", "image", name, "duration", time.Since(start))
	return nil
}

// Create makes the container of task t from its (pulled) image.
func (r *Runtime) Create(ctx context.Context, t *api.Task, opts ...agent.CreateOption) error {
	ctx = r.nsCtx(ctx)
	if err := validateTask(t); err != nil {
		return err
	}
	name, err := ref(t.RunSpec().ImageRef())
	if err != nil {
		return fmt.Errorf("task %s: %w", t.ID, err)
	}
	img, err := r.client.GetImage(ctx, name)
	if err != nil {
		return fmt.Errorf("task %s: image %q (pull it first): %w", t.ID, name, err)
	}
	co := agent.CreateOptionsOf(opts)
	specOpts, err := r.specOpts(ctx, img, t, co.Network)
	if err != nil {
		return err
	}
	// Checked first because the cleanup below must never remove the
	// snapshot (or the secrets) of an existing container.
	if _, err := r.client.LoadContainer(ctx, t.ID); err == nil {
		return fmt.Errorf("create container %s: %w", t.ID, errdefs.ErrAlreadyExists)
	}
	secretMounts, err := r.mountSecrets(t.ID, co.Secrets)
	if err != nil {
		return err
	}
	if len(secretMounts) > 0 {
		specOpts = append(specOpts, oci.WithMounts(secretMounts))
	}
	labels := r.containerLabels(t)
	optionLabels(t.RunSpec().Container, labels)
	stopSignal := client.WithImageStopSignal(img, "SIGTERM")
	if sig, err := stopSignalLabel(t.RunSpec().Container); err != nil {
		return fmt.Errorf("task %s: %w", t.ID, err)
	} else if sig != "" {
		labels[client.StopSignalLabel] = sig
		stopSignal = func(context.Context, *client.Client, *containers.Container) error { return nil }
	}
	_, err = r.client.NewContainer(ctx, t.ID,
		client.WithImage(img),
		client.WithSnapshotter(r.opts.Snapshotter),
		client.WithNewSnapshot(t.ID, img),
		client.WithContainerLabels(labels),
		stopSignal,
		client.WithRuntime(runcRuntime, nil),
		client.WithNewSpec(specOpts...),
	)
	if err != nil {
		err = fmt.Errorf("create container %s: %w", t.ID, err)
		// A failed create may leave the snapshot behind (until containerd's
		// garbage collection), and a retry would then find its key taken.
		if rerr := r.client.SnapshotService(r.opts.Snapshotter).Remove(ctx, t.ID); rerr != nil && !errdefs.IsNotFound(rerr) {
			err = errors.Join(err, fmt.Errorf("remove snapshot %s: %w", t.ID, rerr))
		}
		return errors.Join(err, r.unmountSecrets(t.ID))
	}
	return nil
}

// load returns the container of a task, or agent.ErrNotFound.
func (r *Runtime) load(ctx context.Context, taskID string) (client.Container, error) {
	if err := identifiers.Validate(taskID); err != nil {
		return nil, fmt.Errorf("task id %q: %w", taskID, err)
	}
	c, err := r.client.LoadContainer(ctx, taskID)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("task %s: %w", taskID, agent.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load container %s: %w", taskID, err)
	}
	return c, nil
}
