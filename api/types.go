// Package api holds the domain types shared by every part of shoal: nodes,
// services, tasks and their specs. They are plain Go values; the gRPC edge
// converts them to and from the proto messages, and the Raft log carries them
// inside its command envelope.
//
// Values read from the state store are shared and must be treated as
// immutable: copy (Clone) before changing one.
package api

import (
	"math"
	"reflect"
	"slices"
	"time"
)

// NodeRole says whether a node takes part in Raft.
type NodeRole string

const (
	RoleManager NodeRole = "manager"
	RoleWorker  NodeRole = "worker"
)

// NodeAvailability is set by operators.
type NodeAvailability string

const (
	AvailabilityActive NodeAvailability = "active" // takes new tasks
	AvailabilityPause  NodeAvailability = "pause"  // keeps its tasks, takes no new ones
	AvailabilityDrain  NodeAvailability = "drain"  // its tasks move elsewhere
)

// NodeStatus is observed by the leader (gossip and dispatcher sessions).
type NodeStatus string

const (
	NodeUnknown NodeStatus = "unknown"
	NodeReady   NodeStatus = "ready"
	// NodeRestarting: the agent stopped on purpose and said it will be back
	// by Node.RestartDeadline. The node keeps its tasks (their containers
	// run on) but takes no new ones; it is down only if the deadline passes.
	NodeRestarting NodeStatus = "restarting"
	NodeDown       NodeStatus = "down"
)

// Resources is an amount of CPU (in billionths of a CPU) and memory (bytes).
type Resources struct {
	NanoCPUs    int64 `json:"nano_cpus,omitempty"`
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
}

// Add returns r + o. Sums saturate at the int64 range instead of wrapping
// around: a node's tasks could otherwise add up to a negative use (or a
// free amount that looks positive), whatever a state holds.
func (r Resources) Add(o Resources) Resources {
	return Resources{NanoCPUs: addSat(r.NanoCPUs, o.NanoCPUs), MemoryBytes: addSat(r.MemoryBytes, o.MemoryBytes)}
}

// Sub returns r - o, saturating as Add does.
func (r Resources) Sub(o Resources) Resources {
	return Resources{NanoCPUs: subSat(r.NanoCPUs, o.NanoCPUs), MemoryBytes: subSat(r.MemoryBytes, o.MemoryBytes)}
}

func addSat(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

func subSat(a, b int64) int64 {
	s := a - b
	switch {
	case a >= 0 && b < 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b > 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

// Node is a host that runs an agent (and maybe a manager).
type Node struct {
	ID       string   `json:"id"`
	Hostname string   `json:"hostname"`
	Addr     string   `json:"addr,omitempty"` // its agent's gRPC address (host:port), where managers fetch task logs
	Role     NodeRole `json:"role"`
	// Availability and Labels are the operator's; the rest is observed.
	Availability  NodeAvailability  `json:"availability"`
	Labels        map[string]string `json:"labels,omitempty"`
	Status        NodeStatus        `json:"status"`
	StatusMessage string            `json:"status_message,omitempty"`
	// RestartDeadline is set while Status is restarting: when the node is
	// treated as down if its agent is not back.
	RestartDeadline time.Time `json:"restart_deadline,omitzero"`
	Resources       Resources `json:"resources"`
	// Version counts changes to the node, for optimistic updates.
	Version   uint64    `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Clone returns a deep copy of n.
func (n *Node) Clone() *Node {
	c := *n
	c.Labels = cloneMap(n.Labels)
	return &c
}

// ServiceMode is replicated (N tasks in slots 1..N) or global (one per node).
type ServiceMode string

const (
	ModeReplicated ServiceMode = "replicated"
	ModeGlobal     ServiceMode = "global"
)

// PlacementStrategy orders the nodes that can take a task.
type PlacementStrategy string

const (
	StrategySpread  PlacementStrategy = "spread"  // default: fewest tasks of the service first
	StrategyBinpack PlacementStrategy = "binpack" // fullest node that fits first
)

// RestartCondition says when a stopped task is replaced.
type RestartCondition string

const (
	RestartAny       RestartCondition = "any"
	RestartOnFailure RestartCondition = "on-failure"
	RestartNone      RestartCondition = "none"
)

// DependencyCondition says what "ready" means for a depends_on edge.
type DependencyCondition string

const (
	DependStarted               DependencyCondition = "service_started"
	DependHealthy               DependencyCondition = "service_healthy"
	DependCompletedSuccessfully DependencyCondition = "service_completed_successfully"
)

// Duration is a time.Duration that reads and writes as "1m30s" in JSON.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// MarshalText writes d as Go duration text.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads Go duration text.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Mount is a bind mount or a named local volume.
type Mount struct {
	Type     string `json:"type"` // "bind" or "volume"
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
	// TmpfsSize and TmpfsMode size a tmpfs mount (type "tmpfs", no
	// source): bytes (0: the kernel's default, half the memory) and
	// permission bits (0: 1777).
	TmpfsSize int64  `json:"tmpfs_size,omitempty"`
	TmpfsMode uint32 `json:"tmpfs_mode,omitempty"`
}

// ResourceRequirements: reservations are for placement, limits are enforced.
type ResourceRequirements struct {
	Reservations Resources `json:"reservations"`
	Limits       Resources `json:"limits"`
}

// Placement says where a service's tasks may go and how they spread.
type Placement struct {
	// Constraints like "node.labels.zone==a", "node.role!=manager".
	Constraints []string `json:"constraints,omitempty"`
	// Preferences like "spread=node.labels.zone".
	Preferences        []string          `json:"preferences,omitempty"`
	MaxReplicasPerNode uint64            `json:"max_replicas_per_node,omitempty"`
	Strategy           PlacementStrategy `json:"strategy,omitempty"`
}

// RestartPolicy says when and how fast stopped tasks are replaced.
type RestartPolicy struct {
	Condition   RestartCondition `json:"condition"`
	Delay       Duration         `json:"delay"`
	MaxAttempts uint64           `json:"max_attempts,omitempty"` // 0: unlimited
	Window      Duration         `json:"window,omitempty"`       // 0: forever
}

// UpdateConfig is how a rolling update proceeds.
type UpdateConfig struct {
	Parallelism   uint64   `json:"parallelism"`
	Delay         Duration `json:"delay,omitempty"`
	FailureAction string   `json:"failure_action,omitempty"` // pause|continue|rollback
	Monitor       Duration `json:"monitor,omitempty"`
	Order         string   `json:"order,omitempty"` // stop-first|start-first
	// MaxFailureRatio is the share of the service's tasks that may fail
	// within Monitor before FailureAction runs (0: the first failure).
	MaxFailureRatio float64 `json:"max_failure_ratio,omitempty"`
	// Canary tasks of the new spec start beside the old ones before any
	// old one is replaced; the rollout then waits for a promotion unless
	// AutoPromote (update config only; replicated services only).
	Canary      uint64 `json:"canary,omitempty"`
	AutoPromote bool   `json:"auto_promote,omitempty"`
}

// Healthcheck is a container health probe.
type Healthcheck struct {
	Test        []string `json:"test,omitempty"`
	Interval    Duration `json:"interval,omitempty"`
	Timeout     Duration `json:"timeout,omitempty"`
	Retries     uint64   `json:"retries,omitempty"`
	StartPeriod Duration `json:"start_period,omitempty"`
}

// Dependency is one depends_on edge: this service waits for Service.
type Dependency struct {
	Service   string              `json:"service"` // service name
	Condition DependencyCondition `json:"condition"`
}

// ServiceSpec is what an operator asks for.
type ServiceSpec struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`

	Image string `json:"image"`
	// Command replaces the image's entrypoint; Args replaces its cmd.
	Command         []string             `json:"command,omitempty"`
	Args            []string             `json:"args,omitempty"`
	Env             []string             `json:"env,omitempty"` // K=V
	Dir             string               `json:"dir,omitempty"`
	User            string               `json:"user,omitempty"`
	Mounts          []Mount              `json:"mounts,omitempty"`
	Resources       ResourceRequirements `json:"resources"`
	StopGracePeriod Duration             `json:"stop_grace_period,omitempty"`
	Healthcheck     *Healthcheck         `json:"healthcheck,omitempty"`

	Mode          ServiceMode   `json:"mode"`
	Replicas      uint64        `json:"replicas"` // replicated mode only
	Placement     Placement     `json:"placement"`
	RestartPolicy RestartPolicy `json:"restart_policy"`
	UpdateConfig  UpdateConfig  `json:"update_config"`
	DependsOn     []Dependency  `json:"depends_on,omitempty"`

	// Networks the tasks join (none: the agent host's namespace, see
	// NetworkHost); Endpoint is how the service is reached.
	Networks []NetworkAttachmentSpec `json:"networks,omitempty"`
	Endpoint EndpointSpec            `json:"endpoint,omitzero"`
	// RollbackConfig is how a rollback to the previous spec proceeds.
	RollbackConfig UpdateConfig `json:"rollback_config,omitzero"`
	// ForceUpdate is bumped by `service update --force`: a changed value
	// makes every task outdated, so all are replaced with the same spec.
	ForceUpdate uint64 `json:"force_update,omitempty"`
	// ImageDigest pins Image to one manifest ("sha256:..."): the managers
	// resolve it when the service is created or its image changes, so every
	// task runs the same bytes however the tag moves (see ImageRef).
	ImageDigest string `json:"image_digest,omitempty"`
	// Container holds docker's container options (hostname, init, caps,
	// sysctls, ...); nil when none is set.
	Container *ContainerOptions `json:"container,omitempty"`
	// Secrets and Configs are the stored data the tasks get as files
	// (references only: the data stays in the store until dispatch).
	Secrets []SecretReference `json:"secrets,omitempty"`
	Configs []ConfigReference `json:"configs,omitempty"`
}

// IsZero reports whether s is the empty spec (every field unset), as in a
// task that carries no copy of its spec.
func (s ServiceSpec) IsZero() bool { return reflect.ValueOf(s).IsZero() }

// Clone returns a deep copy of s.
func (s *ServiceSpec) Clone() *ServiceSpec {
	c := *s
	c.Labels = cloneMap(s.Labels)
	c.Command = append([]string(nil), s.Command...)
	c.Args = append([]string(nil), s.Args...)
	c.Env = append([]string(nil), s.Env...)
	c.Mounts = append([]Mount(nil), s.Mounts...)
	c.Placement.Constraints = append([]string(nil), s.Placement.Constraints...)
	c.Placement.Preferences = append([]string(nil), s.Placement.Preferences...)
	c.DependsOn = append([]Dependency(nil), s.DependsOn...)
	c.Networks = cloneAttachmentSpecs(s.Networks)
	c.Endpoint.Ports = append([]PortConfig(nil), s.Endpoint.Ports...)
	c.Container = s.Container.Clone()
	c.Secrets = append([]SecretReference(nil), s.Secrets...)
	c.Configs = append([]ConfigReference(nil), s.Configs...)
	if s.Healthcheck != nil {
		h := *s.Healthcheck
		h.Test = append([]string(nil), s.Healthcheck.Test...)
		c.Healthcheck = &h
	}
	return &c
}

// Service is a named, versioned ServiceSpec.
type Service struct {
	ID   string      `json:"id"`
	Spec ServiceSpec `json:"spec"`
	// SpecVersion grows by one on every spec change; tasks record the version
	// they were made from.
	SpecVersion  uint64       `json:"spec_version"`
	PreviousSpec *ServiceSpec `json:"previous_spec,omitempty"`
	CreatedAt    time.Time    `json:"created_at"`
	UpdatedAt    time.Time    `json:"updated_at"`
	// Endpoint is what the leader allocated: published ports and VIPs.
	Endpoint ServiceEndpoint `json:"endpoint,omitzero"`
	// UpdateStatus is the state of the service's last rollout (nil: none
	// since it was created).
	UpdateStatus *UpdateStatus `json:"update_status,omitempty"`
	// RegistryAuth is the credential the service's image is pulled with
	// (see RegistryAuth); nil: the agents' own configuration.
	RegistryAuth *RegistryAuth `json:"registry_auth,omitempty"`
}

// Clone returns a deep copy of s.
func (s *Service) Clone() *Service {
	c := *s
	c.Spec = *s.Spec.Clone()
	c.Endpoint = s.Endpoint.Clone()
	if s.PreviousSpec != nil {
		c.PreviousSpec = s.PreviousSpec.Clone()
	}
	c.UpdateStatus = s.UpdateStatus.Clone()
	if s.RegistryAuth != nil {
		a := *s.RegistryAuth
		c.RegistryAuth = &a
	}
	return &c
}

// TaskStatus is what was last observed of a task.
type TaskStatus struct {
	State     TaskState `json:"state"`
	Message   string    `json:"message,omitempty"`
	Err       string    `json:"err,omitempty"`
	Timestamp time.Time `json:"timestamp"`
	// PendingReason says why the scheduler could not place the task.
	PendingReason string `json:"pending_reason,omitempty"`
	ContainerID   string `json:"container_id,omitempty"`
	ExitCode      int32  `json:"exit_code,omitempty"`
	// Health is what the task's health check last concluded (none: no
	// check); HealthLog the last probes, newest last (see api/health.go).
	Health    HealthState   `json:"health,omitempty"`
	HealthLog []ProbeResult `json:"health_log,omitempty"`
}

// Task is one replica of a service, bound to at most one node. A task that
// stops is never restarted: a new task replaces it in the same slot.
type Task struct {
	ID          string `json:"id"`
	ServiceID   string `json:"service_id"`
	ServiceName string `json:"service_name"`
	// Slot is 1..N for replicated services, 0 for global ones.
	Slot uint64 `json:"slot,omitempty"`
	// NodeID is empty until the scheduler assigns the task. Global tasks
	// carry their node from creation.
	NodeID string `json:"node_id,omitempty"`
	// SpecVersion names the version of the service's spec the task runs;
	// managers read that spec from the store by (ServiceID, SpecVersion).
	SpecVersion uint64 `json:"spec_version"`
	// Spec is that spec, filled in only where a task leaves the managers
	// for its agent. Tasks in the store and in Raft commands leave it nil
	// (and omitted): a copy in every task made one log entry grow with
	// replicas × spec size. It is a pointer so that those tasks do not
	// hold an empty spec either: by value it was 680 of a task's 1,040
	// bytes, in every task and every version of one the state keeps.
	Spec         *ServiceSpec `json:"spec,omitempty"`
	DesiredState TaskState    `json:"desired_state"`
	Status       TaskStatus   `json:"status"`
	// Attempt counts the tasks before this one in the same slot (restarts).
	Attempt uint64 `json:"attempt,omitempty"`
	// NotBefore holds a replacement back until its restart delay has
	// passed: the scheduler does not place the task before this time. Zero
	// means at once.
	NotBefore time.Time `json:"not_before,omitzero"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Networks are the task's addresses, one per network of its service,
	// set by the leader's allocator before the task is scheduled.
	Networks []NetworkAttachment `json:"networks,omitempty"`
	// StartedAt is when the task was first reported running (set by the
	// store from the report): the start of its rollout monitor window.
	StartedAt time.Time `json:"started_at,omitzero"`
}

// AwaitsNode reports whether t waits to be placed: it should run and has
// not been assigned to a node yet (a global task names its node from
// creation, and waits like any other until it is assigned there).
func (t *Task) AwaitsNode() bool {
	return t.DesiredState == TaskRunning && t.Status.State <= TaskPending
}

// RunSpec is the spec t carries, or an empty spec when it carries none
// (as a task read from the store): never nil.
func (t *Task) RunSpec() *ServiceSpec {
	if t.Spec != nil {
		return t.Spec
	}
	return &ServiceSpec{}
}

// HasSpec reports whether t carries a copy of its spec (see Spec).
func (t *Task) HasSpec() bool { return t.Spec != nil && !t.Spec.IsZero() }

// Clone returns a deep copy of t.
func (t *Task) Clone() *Task {
	c := *t
	if t.Spec != nil {
		c.Spec = t.Spec.Clone()
	}
	c.Networks = CloneAttachments(t.Networks)
	c.Status.HealthLog = slices.Clone(t.Status.HealthLog)
	return &c
}

// ClusterInfo is the cluster's identity and its cluster-wide settings,
// kept in the store.
type ClusterInfo struct {
	ID        string          `json:"id"`
	CreatedAt time.Time       `json:"created_at"`
	Settings  ClusterSettings `json:"settings,omitzero"`
	UpdatedAt time.Time       `json:"updated_at,omitzero"`
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Manager is a member of the Raft cluster, as recorded in the state so that
// every manager can find the leader's gRPC address.
type Manager struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	Addr     string `json:"addr"` // gRPC control address
	// GossipAddr is where agents join the memberlist cluster.
	GossipAddr string `json:"gossip_addr,omitempty"`
	// NonVoter marks a standby manager: in the Raft configuration without
	// a vote (it follows the log), its node a worker until it is promoted.
	NonVoter bool `json:"non_voter,omitempty"`
}
