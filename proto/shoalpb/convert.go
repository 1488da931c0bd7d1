package shoalpb

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/api"
)

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func fromTS(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func dur(d api.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d.Std())
}

func fromDur(d *durationpb.Duration) api.Duration {
	if d == nil {
		return 0
	}
	return api.Duration(d.AsDuration())
}

// FromResources converts domain resources to the message.
func FromResources(r api.Resources) *Resources {
	return &Resources{NanoCpus: r.NanoCPUs, MemoryBytes: r.MemoryBytes}
}

// ToResources converts the message to domain resources.
func ToResources(r *Resources) api.Resources {
	return api.Resources{NanoCPUs: r.GetNanoCpus(), MemoryBytes: r.GetMemoryBytes()}
}

// FromNode converts a domain node to the message.
func FromNode(n *api.Node) *Node {
	if n == nil {
		return nil
	}
	return &Node{
		Id: n.ID, Hostname: n.Hostname, Addr: n.Addr, Role: string(n.Role),
		Availability: string(n.Availability), Labels: n.Labels,
		Status: string(n.Status), StatusMessage: n.StatusMessage,
		Resources: FromResources(n.Resources), Version: n.Version,
		CreatedAt: ts(n.CreatedAt), UpdatedAt: ts(n.UpdatedAt), RestartDeadline: ts(n.RestartDeadline),
	}
}

// ToNode converts the message to a domain node.
func ToNode(n *Node) *api.Node {
	if n == nil {
		return nil
	}
	return &api.Node{
		ID: n.GetId(), Hostname: n.GetHostname(), Addr: n.GetAddr(), Role: api.NodeRole(n.GetRole()),
		Availability: api.NodeAvailability(n.GetAvailability()), Labels: n.GetLabels(),
		Status: api.NodeStatus(n.GetStatus()), StatusMessage: n.GetStatusMessage(),
		Resources: ToResources(n.GetResources()), Version: n.GetVersion(),
		CreatedAt: fromTS(n.GetCreatedAt()), UpdatedAt: fromTS(n.GetUpdatedAt()),
		RestartDeadline: fromTS(n.GetRestartDeadline()),
	}
}

// FromServiceSpec converts a domain spec to the message.
func FromServiceSpec(s *api.ServiceSpec) *ServiceSpec {
	if s == nil {
		return nil
	}
	out := &ServiceSpec{
		Name: s.Name, Labels: s.Labels, Image: s.Image, Command: s.Command, Args: s.Args,
		Env: s.Env, Dir: s.Dir, User: s.User, ImageDigest: s.ImageDigest,
		Reservations:    FromResources(s.Resources.Reservations),
		Limits:          FromResources(s.Resources.Limits),
		StopGracePeriod: dur(s.StopGracePeriod),
		Mode:            string(s.Mode), Replicas: s.Replicas,
		Placement: &Placement{
			Constraints: s.Placement.Constraints, Preferences: s.Placement.Preferences,
			MaxReplicasPerNode: s.Placement.MaxReplicasPerNode, Strategy: string(s.Placement.Strategy),
		},
		RestartPolicy: &RestartPolicy{
			Condition: string(s.RestartPolicy.Condition), Delay: dur(s.RestartPolicy.Delay),
			MaxAttempts: s.RestartPolicy.MaxAttempts, Window: dur(s.RestartPolicy.Window),
		},
		UpdateConfig:   FromUpdateConfig(s.UpdateConfig),
		RollbackConfig: FromUpdateConfig(s.RollbackConfig),
		ForceUpdate:    s.ForceUpdate,
	}
	for _, m := range s.Mounts {
		out.Mounts = append(out.Mounts, &Mount{Type: m.Type, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly,
			TmpfsSize: m.TmpfsSize, TmpfsMode: m.TmpfsMode})
	}
	if h := s.Healthcheck; h != nil {
		out.Healthcheck = &Healthcheck{
			Test: h.Test, Interval: dur(h.Interval), Timeout: dur(h.Timeout),
			Retries: h.Retries, StartPeriod: dur(h.StartPeriod),
		}
	}
	for _, d := range s.DependsOn {
		out.DependsOn = append(out.DependsOn, &Dependency{Service: d.Service, Condition: string(d.Condition)})
	}
	out.Networks, out.Endpoint = fromAttachmentSpecs(s.Networks), FromEndpointSpec(s.Endpoint)
	out.Container = FromContainerOptions(s.Container)
	out.Secrets, out.Configs = FromSecretRefs(s.Secrets), FromSecretRefs(s.Configs)
	return out
}

// ToServiceSpec converts the message to a domain spec.
func ToServiceSpec(s *ServiceSpec) *api.ServiceSpec {
	if s == nil {
		return nil
	}
	p, rp, uc := s.GetPlacement(), s.GetRestartPolicy(), s.GetUpdateConfig()
	out := &api.ServiceSpec{
		Name: s.GetName(), Labels: s.GetLabels(), Image: s.GetImage(), Command: s.GetCommand(),
		Args: s.GetArgs(), Env: s.GetEnv(), Dir: s.GetDir(), User: s.GetUser(), ImageDigest: s.GetImageDigest(),
		Resources: api.ResourceRequirements{
			Reservations: ToResources(s.GetReservations()),
			Limits:       ToResources(s.GetLimits()),
		},
		StopGracePeriod: fromDur(s.GetStopGracePeriod()),
		Mode:            api.ServiceMode(s.GetMode()), Replicas: s.GetReplicas(),
		Placement: api.Placement{
			Constraints: p.GetConstraints(), Preferences: p.GetPreferences(),
			MaxReplicasPerNode: p.GetMaxReplicasPerNode(), Strategy: api.PlacementStrategy(p.GetStrategy()),
		},
		RestartPolicy: api.RestartPolicy{
			Condition: api.RestartCondition(rp.GetCondition()), Delay: fromDur(rp.GetDelay()),
			MaxAttempts: rp.GetMaxAttempts(), Window: fromDur(rp.GetWindow()),
		},
		UpdateConfig:   ToUpdateConfig(uc),
		RollbackConfig: ToUpdateConfig(s.GetRollbackConfig()),
		ForceUpdate:    s.GetForceUpdate(),
	}
	for _, m := range s.GetMounts() {
		out.Mounts = append(out.Mounts, api.Mount{Type: m.GetType(), Source: m.GetSource(), Target: m.GetTarget(), ReadOnly: m.GetReadOnly(),
			TmpfsSize: m.GetTmpfsSize(), TmpfsMode: m.GetTmpfsMode()})
	}
	if h := s.GetHealthcheck(); h != nil {
		out.Healthcheck = &api.Healthcheck{
			Test: h.GetTest(), Interval: fromDur(h.GetInterval()), Timeout: fromDur(h.GetTimeout()),
			Retries: h.GetRetries(), StartPeriod: fromDur(h.GetStartPeriod()),
		}
	}
	for _, d := range s.GetDependsOn() {
		out.DependsOn = append(out.DependsOn, api.Dependency{Service: d.GetService(), Condition: api.DependencyCondition(d.GetCondition())})
	}
	out.Networks, out.Endpoint = toAttachmentSpecs(s.GetNetworks()), ToEndpointSpec(s.GetEndpoint())
	out.Container = ToContainerOptions(s.GetContainer())
	out.Secrets, out.Configs = ToSecretRefs(s.GetSecrets()), ToSecretRefs(s.GetConfigs())
	return out
}

// FromService converts a domain service to the message.
func FromService(s *api.Service) *Service {
	if s == nil {
		return nil
	}
	return &Service{
		Id: s.ID, Spec: FromServiceSpec(&s.Spec), SpecVersion: s.SpecVersion,
		PreviousSpec: FromServiceSpec(s.PreviousSpec),
		CreatedAt:    ts(s.CreatedAt), UpdatedAt: ts(s.UpdatedAt),
		Endpoint:     FromServiceEndpoint(s.Endpoint),
		UpdateStatus: FromUpdateStatus(s.UpdateStatus),
	}
}

// ToService converts the message to a domain service.
func ToService(s *Service) *api.Service {
	if s == nil {
		return nil
	}
	out := &api.Service{
		ID: s.GetId(), SpecVersion: s.GetSpecVersion(), PreviousSpec: ToServiceSpec(s.GetPreviousSpec()),
		CreatedAt: fromTS(s.GetCreatedAt()), UpdatedAt: fromTS(s.GetUpdatedAt()),
		Endpoint:     ToServiceEndpoint(s.GetEndpoint()),
		UpdateStatus: ToUpdateStatus(s.GetUpdateStatus()),
	}
	if spec := ToServiceSpec(s.GetSpec()); spec != nil {
		out.Spec = *spec
	}
	return out
}

// FromTaskStatus converts a domain task status to the message.
func FromTaskStatus(st api.TaskStatus) *TaskStatus {
	return &TaskStatus{
		State: st.State.String(), Message: st.Message, Err: st.Err, Timestamp: ts(st.Timestamp),
		PendingReason: st.PendingReason, ContainerId: st.ContainerID, ExitCode: st.ExitCode,
		Health: string(st.Health), HealthLog: fromProbes(st.HealthLog),
	}
}

// ToTaskStatus converts the message to a domain task status. An unknown
// state name is an error: it would otherwise move a task to "new".
func ToTaskStatus(st *TaskStatus) (api.TaskStatus, error) {
	state, err := api.ParseTaskState(st.GetState())
	if err != nil {
		return api.TaskStatus{}, err
	}
	health, err := api.ParseHealthState(st.GetHealth())
	if err != nil {
		return api.TaskStatus{}, err
	}
	return api.TaskStatus{
		State: state, Message: st.GetMessage(), Err: st.GetErr(), Timestamp: fromTS(st.GetTimestamp()),
		PendingReason: st.GetPendingReason(), ContainerID: st.GetContainerId(), ExitCode: st.GetExitCode(),
		Health: health, HealthLog: toProbes(st.GetHealthLog()),
	}, nil
}

// FromTask converts a domain task to the message, with the spec copy the
// task carries (none for a task read from the store: see FromTaskWithSpec).
func FromTask(t *api.Task) *Task {
	if t == nil {
		return nil
	}
	var spec *api.ServiceSpec
	if t.HasSpec() {
		spec = t.Spec
	}
	return FromTaskWithSpec(t, spec)
}

// FromTaskWithSpec converts a domain task to the message carrying spec,
// the spec of the task's version (nil: none), as managers send tasks to
// agents and clients: the store keeps a task's spec apart from the task.
func FromTaskWithSpec(t *api.Task, spec *api.ServiceSpec) *Task {
	if t == nil {
		return nil
	}
	return &Task{
		Id: t.ID, ServiceId: t.ServiceID, ServiceName: t.ServiceName, Slot: t.Slot, NodeId: t.NodeID,
		SpecVersion: t.SpecVersion, Spec: FromServiceSpec(spec), DesiredState: t.DesiredState.String(),
		Status: FromTaskStatus(t.Status), Attempt: t.Attempt,
		CreatedAt: ts(t.CreatedAt), UpdatedAt: ts(t.UpdatedAt),
		Networks:  FromAttachments(t.Networks),
		StartedAt: ts(t.StartedAt),
	}
}

// ToTask converts the message to a domain task.
func ToTask(t *Task) (*api.Task, error) {
	desired, err := api.ParseTaskState(t.GetDesiredState())
	if err != nil {
		return nil, err
	}
	status, err := ToTaskStatus(t.GetStatus())
	if err != nil {
		return nil, err
	}
	out := &api.Task{
		ID: t.GetId(), ServiceID: t.GetServiceId(), ServiceName: t.GetServiceName(), Slot: t.GetSlot(),
		NodeID: t.GetNodeId(), SpecVersion: t.GetSpecVersion(), DesiredState: desired, Status: status,
		Attempt: t.GetAttempt(), CreatedAt: fromTS(t.GetCreatedAt()), UpdatedAt: fromTS(t.GetUpdatedAt()),
		Networks:  ToAttachments(t.GetNetworks()),
		StartedAt: fromTS(t.GetStartedAt()),
	}
	out.Spec = ToServiceSpec(t.GetSpec())
	return out, nil
}
