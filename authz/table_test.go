package authz

import (
	"slices"
	"testing"

	"google.golang.org/grpc"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// Every method of every shoal service has an entry: one missing is
// refused to everyone.
func TestTableCoversEveryMethod(t *testing.T) {
	for _, sd := range []*grpc.ServiceDesc{&shoalpb.Control_ServiceDesc, &shoalpb.NodeCA_ServiceDesc,
		&shoalpb.Dispatcher_ServiceDesc, &shoalpb.Agent_ServiceDesc} {
		var names []string
		for _, m := range sd.Methods {
			names = append(names, m.MethodName)
		}
		for _, s := range sd.Streams {
			names = append(names, s.StreamName)
		}
		for _, n := range names {
			if method := "/" + sd.ServiceName + "/" + n; !Known(method) {
				t.Errorf("%s has no authorisation entry", method)
			}
		}
	}
}

// The autolock calls are an operator's alone: the unlock key opens every
// manager's data key, and the unlock ends a manager's lock.
func TestAutolockCallsAreOperatorOnly(t *testing.T) {
	for _, method := range []string{shoalpb.Control_UnlockCluster_FullMethodName, shoalpb.Control_GetUnlockKey_FullMethodName} {
		r, ok := table[method]
		if !ok {
			t.Errorf("%s has no authorisation entry", method)
			continue
		}
		if r.open || !slices.Equal(r.roles, []string{RoleOperator}) {
			t.Errorf("%s is allowed to %v (open %v); want the operator alone", method, r.roles, r.open)
		}
		for _, role := range []string{RoleWorker, RoleManager} {
			if r.allows(role) {
				t.Errorf("%s allows role %s", method, role)
			}
		}
	}
}

// The web UI's read-only caller reads the cluster's objects and nothing
// else: every other method but the open join calls refuses it.
func TestViewerReadsOnly(t *testing.T) {
	reads := []string{
		shoalpb.Control_GetService_FullMethodName, shoalpb.Control_ListServices_FullMethodName,
		shoalpb.Control_ListTasks_FullMethodName, shoalpb.Control_ListNodes_FullMethodName,
		shoalpb.Control_GetNode_FullMethodName, shoalpb.Control_ClusterStatus_FullMethodName,
		shoalpb.Control_Events_FullMethodName, shoalpb.Control_ServiceLogs_FullMethodName,
		shoalpb.Control_ListNetworks_FullMethodName, shoalpb.Control_GetNetwork_FullMethodName,
	}
	for method, r := range table {
		if r.open {
			continue // the join calls are anyone's
		}
		if got, want := Allows(method, RoleViewer), slices.Contains(reads, method); got != want {
			t.Errorf("%s: viewer allowed %v, want %v", method, got, want)
		}
	}
	for _, method := range reads {
		if !Allows(method, RoleOperator) {
			t.Errorf("%s refuses the operator", method)
		}
	}
}
