package agent

import (
	"context"
	"errors"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// Runtime runs the containers of an agent's tasks. agent/containerd is the
// real one; agent/fake scripts it for tests and simulations.
//
// Every container a Runtime creates carries the labels api.LabelTask,
// api.LabelService and api.LabelNode, and its ID is the task ID, so that a
// restarted agent can List what it left running and adopt it.
type Runtime interface {
	// Pull fetches the image if it is not present (with the credential of
	// WithPullAuth, if given, for the image's registry).
	Pull(ctx context.Context, image string, opts ...PullOption) error
	// Create makes (but does not start) the container of task t.
	Create(ctx context.Context, t *api.Task, opts ...CreateOption) error
	// Start starts the created container of the task.
	Start(ctx context.Context, taskID string) error
	// Wait blocks until the container exits (or ctx ends) and returns how.
	Wait(ctx context.Context, taskID string) (ExitStatus, error)
	// Stop sends SIGTERM, then SIGKILL once grace has passed.
	Stop(ctx context.Context, taskID string, grace time.Duration) error
	// Remove deletes the container and everything it owns (snapshot, logs).
	// Removing a container that does not exist is not an error.
	Remove(ctx context.Context, taskID string) error
	// List returns the containers this runtime manages (labelled by shoal,
	// in this agent's namespace).
	List(ctx context.Context) ([]Container, error)
	// Logs writes the task's log lines to w; with follow it keeps going
	// until ctx ends; tail < 0 means all lines.
	Logs(ctx context.Context, taskID string, opts LogOptions, w LogWriter) error
}

// ContainerNetwork wires a container to the data plane. The zero value is
// host networking: the container shares the agent host's namespace (and
// its hostname, hosts and resolv.conf).
type ContainerNetwork struct {
	// NetNS is the path of the network namespace the container joins.
	NetNS string
	// ResolvConf and Hosts are files mounted at /etc/resolv.conf and
	// /etc/hosts; Hostname is the container's own (a UTS namespace).
	ResolvConf string
	Hosts      string
	Hostname   string
}

// CreateOptions are the extras of a Create beyond the task.
type CreateOptions struct {
	Network ContainerNetwork
	// Secrets are the task's secret and config files, with their data: the
	// runtime mounts them read-only from memory (a tmpfs) and never writes
	// them to disk; Remove takes them away.
	Secrets []api.SecretFile
}

// WithSecrets gives the container its secret and config files.
func WithSecrets(files []api.SecretFile) CreateOption {
	return func(o *CreateOptions) { o.Secrets = files }
}

// PullOptions are the extras of a Pull.
type PullOptions struct {
	// Auth is the service's registry credential (--with-registry-auth),
	// used for the image's registry when it names that registry.
	Auth *api.RegistryAuth
}

// PullOption sets a PullOptions field.
type PullOption func(*PullOptions)

// WithPullAuth pulls with a registry credential (nil: none).
func WithPullAuth(a *api.RegistryAuth) PullOption {
	return func(o *PullOptions) { o.Auth = a }
}

// PullOptionsOf applies opts to the zero options.
func PullOptionsOf(opts []PullOption) PullOptions {
	var o PullOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// CreateOption sets a CreateOptions field.
type CreateOption func(*CreateOptions)

// WithNetwork puts the container on the data plane.
func WithNetwork(n ContainerNetwork) CreateOption {
	return func(o *CreateOptions) { o.Network = n }
}

// CreateOptionsOf applies opts to the zero options.
func CreateOptionsOf(opts []CreateOption) CreateOptions {
	var o CreateOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Container is what a Runtime reports of one container.
type Container struct {
	TaskID    string
	ServiceID string
	Running   bool
	// Exited is set when the container ran and stopped; Exit says how.
	Exited bool
	Exit   ExitStatus
}

// ExitStatus is how a container ended.
type ExitStatus struct {
	Code      int32
	OOMKilled bool
	At        time.Time
}

// LogOptions selects log lines.
type LogOptions struct {
	Follow bool
	Tail   int64 // < 0: all
}

// LogWriter receives log lines, one call per line.
type LogWriter interface {
	WriteLine(stream string, at time.Time, line []byte) error
}

// ErrNotFound is returned (wrapped) for a task with no container.
var ErrNotFound = errors.New("container not found")
