package raftstore

// This file is the contract other packages code against. Bodies marked
// "not built yet" are filled in by the raftstore implementation.

import (
	"context"
	"errors"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// Domain errors returned by Apply (wrapped, with the offending value named).
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrConflict      = errors.New("version conflict")
	ErrInvalid       = errors.New("invalid")
	// ErrNotLeader: this manager cannot commit; the caller forwards to the leader.
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader: no leader could be reached within the apply timeout
	// (the cluster has no quorum).
	ErrNoLeader = errors.New("no leader: the cluster has no quorum")
	// ErrCommitUncertain: the command was handed to Raft, then leadership
	// was lost or the wait ended, so it may or may not commit later. It is
	// wrapped together with ErrNotLeader or ErrNoLeader (or the caller's
	// context error). Only a Request may be sent again after it: the FSM
	// answers a repeated request ID with the first result.
	ErrCommitUncertain = errors.New("the command may still commit")
)

// Command is one change to the State. The concrete types are below; each is
// encoded in the one protobuf envelope when it goes through Raft.
type Command interface{ commandType() CommandType }

// CommandType names the kind of a Command in the log envelope.
type CommandType int32

const (
	CmdInvalid CommandType = iota
	CmdCreateService
	CmdUpdateService
	CmdRemoveService
	CmdUpsertNode
	CmdUpdateNode
	CmdSetNodeStatus
	CmdRemoveNode
	CmdWriteTasks
	CmdAssignTasks
	CmdUpdateTaskStatus
	CmdSetCluster
	CmdUpsertManager
	CmdRemoveManager
	CmdBatch
)

// CreateService adds Service (ID, spec, timestamps set by the proposer).
// Fails with ErrAlreadyExists when the name is taken.
type CreateService struct{ Service *api.Service }

// UpdateService replaces the spec of service ID; the FSM bumps SpecVersion
// and keeps the previous spec. ExpectedVersion != 0 must match.
type UpdateService struct {
	ID              string
	Spec            api.ServiceSpec
	ExpectedVersion uint64
	At              time.Time
	// RegistryAuth replaces the service's registry credential when set;
	// nil keeps the one it has.
	RegistryAuth *api.RegistryAuth `json:",omitempty"`
}

// RemoveService deletes the service and sets DesiredState=remove on its tasks.
type RemoveService struct {
	ID string
	At time.Time
}

// UpsertNode registers a node or refreshes what it reports of itself
// (hostname, addr, role, resources; labels only on first registration).
// Availability and operator labels of an existing node are kept.
type UpsertNode struct{ Node *api.Node }

// UpdateNode is an operator change: availability and labels.
type UpdateNode struct {
	ID              string
	Availability    api.NodeAvailability // empty: unchanged
	LabelAdd        map[string]string
	LabelRm         []string
	ExpectedVersion uint64
	At              time.Time
}

// SetNodeStatus records an observed status. Restarting needs a
// RestartDeadline after At (any other status clears the node's deadline).
// ExpectedVersion != 0 must match the node's version: the leader decided on
// what it saw of the node, and a node that changed since (its agent came
// back) is left alone, with ErrConflict.
type SetNodeStatus struct {
	ID              string
	Status          api.NodeStatus
	Message         string
	RestartDeadline time.Time `json:",omitzero"`
	ExpectedVersion uint64    `json:",omitempty"`
	At              time.Time
}

// RemoveNode deletes a node; its tasks become orphaned.
type RemoveNode struct {
	ID string
	At time.Time
}

// WriteTasks creates, updates and deletes tasks in one entry (orchestrators).
// Updates may change DesiredState, NodeID, Status; a status update that would
// move a task backwards is refused for that task only.
type WriteTasks struct {
	Create []*api.Task
	Update []*api.Task
	Delete []string
	At     time.Time
}

// Assignment binds a task that waits for a node (new or pending) to a node.
// A task that already names its node (a global service's) can only be
// assigned to that node.
type Assignment struct {
	TaskID string
	NodeID string
}

// PendingReason records why a task could not be placed.
type PendingReason struct {
	TaskID string
	Reason string
}

// AssignTasks commits scheduler decisions. The FSM re-checks each node
// (ready, active, enough free reserved CPU and memory after the assignments
// before it in the same command) and refuses the ones that no longer fit;
// the response lists them (AssignResult), and a refused task that still
// waits for a node is left pending with the refusal as its reason.
type AssignTasks struct {
	Assignments []Assignment
	Pending     []PendingReason
	At          time.Time
}

// AssignResult is the response value of AssignTasks.
type AssignResult struct {
	Assigned int
	Refused  []PendingReason
}

// TaskStatusUpdate is one status report from an agent.
type TaskStatusUpdate struct {
	TaskID string
	Status api.TaskStatus
}

// UpdateTaskStatus applies agent reports; backward moves and unknown tasks
// are skipped (counted in the response), never an error for the batch.
type UpdateTaskStatus struct {
	NodeID  string
	Updates []TaskStatusUpdate
	At      time.Time
}

// SetCluster records the cluster's identity (once, at bootstrap). With
// Settings set it changes instead the cluster-wide settings of the cluster
// Cluster.ID names (the identity never changes): the FSM refuses
// settings that services in the state already exceed.
type SetCluster struct {
	Cluster  api.ClusterInfo
	Settings *api.ClusterSettings `json:",omitempty"`
	At       time.Time            `json:",omitzero"`
}

// UpsertManager records a manager's addresses.
type UpsertManager struct{ Manager api.Manager }

// RemoveManager forgets a manager.
type RemoveManager struct{ ID string }

// Batch applies several commands in one log entry, each with its own result.
type Batch struct{ Commands []Command }

// Request is Command sent on behalf of one client request, identified by
// ID (at most MaxRequestIDLength bytes). The FSM remembers the IDs of the
// last RequestMemory requests that succeeded, with their results, and
// answers a Request whose ID it remembers with that first result (and its
// index) instead of applying Command again, so a write may be retried
// after ErrCommitUncertain. The answer's Value may be nil (older requests,
// and every request after a snapshot restore, keep the index alone): the
// caller then reads the object from the state. A rejected request is not remembered: it
// changed nothing, and its retry is decided afresh. Command may be any
// command but a Batch or another Request.
type Request struct {
	ID      string
	Command Command
}

func (CreateService) commandType() CommandType    { return CmdCreateService }
func (UpdateService) commandType() CommandType    { return CmdUpdateService }
func (RemoveService) commandType() CommandType    { return CmdRemoveService }
func (UpsertNode) commandType() CommandType       { return CmdUpsertNode }
func (UpdateNode) commandType() CommandType       { return CmdUpdateNode }
func (SetNodeStatus) commandType() CommandType    { return CmdSetNodeStatus }
func (RemoveNode) commandType() CommandType       { return CmdRemoveNode }
func (WriteTasks) commandType() CommandType       { return CmdWriteTasks }
func (AssignTasks) commandType() CommandType      { return CmdAssignTasks }
func (UpdateTaskStatus) commandType() CommandType { return CmdUpdateTaskStatus }
func (SetCluster) commandType() CommandType       { return CmdSetCluster }
func (UpsertManager) commandType() CommandType    { return CmdUpsertManager }
func (RemoveManager) commandType() CommandType    { return CmdRemoveManager }
func (Batch) commandType() CommandType            { return CmdBatch }

// A Request has the type of the command it carries (the request ID is a
// field of the envelope).
func (r Request) commandType() CommandType {
	if c := deref(r.Command); c != nil {
		return c.commandType()
	}
	return CmdInvalid
}

// Response is the outcome of one committed command.
type Response struct {
	// Index is the Raft index of the entry (LocalApplier: its own
	// counter); for a repeated Request, that of its first application.
	Index uint64
	Value any // e.g. *api.Service for CreateService, AssignResult, …
}

// Applier commits commands. A domain rejection comes back as an error that
// wraps one of the sentinel errors above; the state is then unchanged.
type Applier interface {
	Apply(ctx context.Context, cmd Command) (Response, error)
}

// Event is one change seen by State subscribers (shoalctl events, watchers).
type Event struct {
	Index  uint64
	Kind   string // service | task | node
	Action string // create | update | remove
	// Exactly one of these is set: the object after the change (before it,
	// for remove).
	Service *api.Service
	Task    *api.Task
	Node    *api.Node
	Network *api.Network
	// Secret is a secret or config (Kind says which), always without its
	// data: subscribers (events, watchers) never see it.
	Secret *api.Secret
}
