package ctl

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// PromoteNode makes a worker of the fake a manager (a manager stays one).
func (f *fakeControl) PromoteNode(_ context.Context, req *shoalpb.PromoteNodeRequest) (*shoalpb.NodeRoleResponse, error) {
	return handle(f, req, func() (*shoalpb.NodeRoleResponse, error) {
		n, err := f.findNode(req.GetNode())
		if err != nil {
			return nil, err
		}
		changed := n.GetNode().GetRole() != "manager"
		n.Node.Role = "manager"
		return &shoalpb.NodeRoleResponse{Node: n.GetNode(), Changed: changed, Index: 50}, nil
	})
}

// DemoteNode refuses the fake's only manager, as a real one does.
func (f *fakeControl) DemoteNode(_ context.Context, req *shoalpb.DemoteNodeRequest) (*shoalpb.NodeRoleResponse, error) {
	return handle(f, req, func() (*shoalpb.NodeRoleResponse, error) {
		n, err := f.findNode(req.GetNode())
		if err != nil {
			return nil, err
		}
		if n.GetNode().GetRole() == "manager" {
			return nil, status.Errorf(codes.FailedPrecondition, "node %s (%s): failed precondition: it is the last manager; promote another node first",
				n.GetNode().GetId(), n.GetNode().GetHostname())
		}
		return &shoalpb.NodeRoleResponse{Node: n.GetNode()}, nil
	})
}

func TestNodePromoteDemote(t *testing.T) {
	host := serveTCP(t, newFakeControl())
	out := mustRun(t, host, "node", "promote", "worker-1", "manager-1")
	want := "Node worker-1 promoted to a manager in the cluster.\nNode manager-1 is already a manager.\n"
	if out != want {
		t.Errorf("promote printed %q, want %q", out, want)
	}
	if out := mustRun(t, host, "node", "demote", "worker-2"); out != "Node worker-2 is already a worker.\n" {
		t.Errorf("demote of a worker printed %q", out)
	}
	r := mustFail(t, host, []string{"node", "demote", "manager-1"}, "manager-1", "last manager", "promote another node first")
	if strings.Contains(r.stdout, "demoted") {
		t.Errorf("a refused demote printed %q", r.stdout)
	}
	js := mustRun(t, host, "node", "promote", "-o", "json", "worker-2")
	if !strings.Contains(js, `"changed": true`) || !strings.Contains(js, `"role": "manager"`) {
		t.Errorf("promote -o json printed %s", js)
	}
}
