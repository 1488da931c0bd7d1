// Package authz decides who may call what on shoal's gRPC links. One table
// names, for every method of every service, the roles allowed to call it;
// interceptors enforce it from the caller's verified certificate (or the
// root-only unix control socket, which counts as an operator). The same
// package builds the TLS options every shoal server and client uses, so a
// link cannot be opened without them by mistake.
package authz

import (
	"slices"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// Roles a certificate (its OU) may carry.
const (
	RoleManager  = pki.RoleManager
	RoleWorker   = pki.RoleWorker
	RoleOperator = pki.RoleOperator
	// RoleViewer is the web UI's caller when the browser shows no
	// operator certificate: no certificate carries it (the CA issues the
	// three roles above only); the manager's own UI gateway forwards it,
	// and the table lets it read and nothing else.
	RoleViewer = "viewer"
)

// rule is one method's entry: the roles allowed to call it, or open to any
// caller, with or without a certificate (the join calls alone).
type rule struct {
	roles []string
	open  bool
}

func (r rule) allows(role string) bool { return r.open || slices.Contains(r.roles, role) }

var (
	operators = rule{roles: []string{RoleOperator}}
	managers  = rule{roles: []string{RoleManager}}
	agents    = rule{roles: []string{RoleWorker, RoleManager}}
	open      = rule{open: true}
	// readers may read cluster status: operators, and agents that look
	// for the managers' addresses.
	readers = rule{roles: []string{RoleOperator, RoleWorker, RoleManager, RoleViewer}}
	// viewers may read the cluster's objects: operators, and the web UI's
	// read-only caller.
	viewers = rule{roles: []string{RoleOperator, RoleViewer}}
)

// table is the authorisation of every gRPC method shoal serves. A method
// missing here is refused (and a test over each server's service info
// fails). Calls a follower forwards are judged by the original caller's
// role (see forward.go), so the Control writes stay operator-only.
var table = map[string]rule{
	shoalpb.Control_CreateService_FullMethodName: operators,
	shoalpb.Control_UpdateService_FullMethodName: operators,
	shoalpb.Control_ScaleService_FullMethodName:  operators,
	shoalpb.Control_RemoveService_FullMethodName: operators,
	shoalpb.Control_GetService_FullMethodName:    viewers,
	shoalpb.Control_ListServices_FullMethodName:  viewers,
	shoalpb.Control_ListTasks_FullMethodName:     viewers,
	shoalpb.Control_ListNodes_FullMethodName:     viewers,
	shoalpb.Control_GetNode_FullMethodName:       viewers,
	shoalpb.Control_UpdateNode_FullMethodName:    operators,
	shoalpb.Control_RemoveNode_FullMethodName:    operators,
	shoalpb.Control_ClusterStatus_FullMethodName: readers,
	shoalpb.Control_UpdateCluster_FullMethodName: operators,
	shoalpb.Control_Events_FullMethodName:        viewers,
	shoalpb.Control_Watch_FullMethodName:         viewers,
	shoalpb.Control_ServiceLogs_FullMethodName:   viewers,
	// Networks are an operator's, like services.
	shoalpb.Control_CreateNetwork_FullMethodName: operators,
	shoalpb.Control_ListNetworks_FullMethodName:  viewers,
	shoalpb.Control_GetNetwork_FullMethodName:    viewers,
	shoalpb.Control_RemoveNetwork_FullMethodName: operators,
	// Secrets and configs are an operator's; agents get theirs only on
	// their dispatcher session, never through these.
	shoalpb.Control_CreateSecret_FullMethodName: operators,
	shoalpb.Control_ListSecrets_FullMethodName:  operators,
	shoalpb.Control_GetSecret_FullMethodName:    operators,
	shoalpb.Control_UpdateSecret_FullMethodName: operators,
	shoalpb.Control_RemoveSecret_FullMethodName: operators,
	// Rollouts, manager roles and the autolock key are an operator's too.
	shoalpb.Control_RollbackService_FullMethodName: operators,
	shoalpb.Control_PromoteService_FullMethodName:  operators,
	shoalpb.Control_PromoteNode_FullMethodName:     operators,
	shoalpb.Control_DemoteNode_FullMethodName:      operators,
	// UnlockCluster is served only by a locked manager, and only through
	// its control socket (it checks that itself).
	shoalpb.Control_UnlockCluster_FullMethodName: operators,
	shoalpb.Control_GetUnlockKey_FullMethodName:  operators,
	// A manager asks to be added to (or recorded in) the Raft
	// configuration with the manager certificate it joined with.
	shoalpb.Control_JoinManager_FullMethodName: managers,
	// The cluster's CA: tokens, operator certificates and the root are
	// an operator's business.
	shoalpb.Control_GetJoinTokens_FullMethodName:            operators,
	shoalpb.Control_RotateJoinToken_FullMethodName:          operators,
	shoalpb.Control_IssueOperatorCertificate_FullMethodName: operators,
	shoalpb.Control_RotateRootCA_FullMethodName:             operators,
	shoalpb.Control_GetRootCAStatus_FullMethodName:          operators,

	// The join calls are open: a joining node has no certificate yet (it
	// proves itself with the token's secret), and a node whose
	// certificate expired asks whether to renew.
	shoalpb.NodeCA_GetRootCA_FullMethodName:             open,
	shoalpb.NodeCA_IssueNodeCertificate_FullMethodName:  open,
	shoalpb.NodeCA_NodeCertificateStatus_FullMethodName: open,
	// Renewal is for a node's own certificate.
	shoalpb.NodeCA_RenewNodeCertificate_FullMethodName: agents,

	shoalpb.Dispatcher_Session_FullMethodName: agents,
	// The leader reads task logs from the agents; nobody else may.
	shoalpb.Agent_TaskLogs_FullMethodName: managers,

	// Managers probe each other's health to report reachability.
	healthpb.Health_Check_FullMethodName: managers,
	healthpb.Health_Watch_FullMethodName: managers,
	healthpb.Health_List_FullMethodName:  managers,
}

// Known reports whether method has an entry in the table.
func Known(method string) bool {
	_, ok := table[method]
	return ok
}

// Allows reports whether a caller of role may call method (false for an
// unknown method).
func Allows(method, role string) bool {
	r, ok := table[method]
	return ok && r.allows(role)
}

// Allowed lists the roles allowed to call method (nil for an open or
// unknown method).
func Allowed(method string) []string { return slices.Clone(table[method].roles) }

// Missing lists the methods a gRPC server serves that have no entry in
// the table, as "/service/method".
func Missing(info map[string]grpc.ServiceInfo) []string {
	var out []string
	for svc, si := range info {
		for _, m := range si.Methods {
			if name := "/" + svc + "/" + m.Name; !Known(name) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}
