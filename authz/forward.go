package authz

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/metadata"
)

// A follower forwards a call to the leader with its own manager
// certificate; the original caller travels in metadata, which the leader
// believes only from a manager (any other peer's is ignored), and the
// leader judges the call by the original caller's role.
const (
	mdCallerNode  = "shoal-caller-node"
	mdCallerRole  = "shoal-caller-role"
	mdCallerLocal = "shoal-caller-local"
)

// ErrForwarded: a forwarded call's caller metadata is malformed.
var ErrForwarded = errors.New("bad forwarded caller")

// ForwardContext returns ctx with the caller of the call ctx serves put
// into the outgoing metadata, for a manager forwarding that call. A call
// without a caller (an open join call) is forwarded as is.
func ForwardContext(ctx context.Context) context.Context {
	c, ok := CallerFrom(ctx)
	if !ok {
		return ctx
	}
	local := "false"
	if c.Local {
		local = "true"
	}
	return metadata.AppendToOutgoingContext(ctx, mdCallerNode, c.NodeID, mdCallerRole, c.Role, mdCallerLocal, local)
}

// forwardedCaller reads the original caller of a call that manager via
// forwarded; ok is false for a call made on the manager's own behalf.
func forwardedCaller(ctx context.Context, via Caller) (Caller, bool, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	nodes, roles, locals := md.Get(mdCallerNode), md.Get(mdCallerRole), md.Get(mdCallerLocal)
	if len(nodes) == 0 && len(roles) == 0 {
		return Caller{}, false, nil
	}
	if len(nodes) != 1 || len(roles) != 1 || len(locals) > 1 || nodes[0] == "" || roles[0] == "" {
		return Caller{}, false, fmt.Errorf("%w from manager %s: want one node and one role", ErrForwarded, via.NodeID)
	}
	c := Caller{NodeID: nodes[0], Role: roles[0], ClusterID: via.ClusterID, Via: via.NodeID}
	c.Local = len(locals) == 1 && locals[0] == "true"
	return c, true, nil
}
