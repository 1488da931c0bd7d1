package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors of authorisation, wrapped with the details.
var (
	ErrWrongCluster = errors.New("certificate of another cluster")
	ErrRevoked      = errors.New("certificate revoked")
	ErrRole         = errors.New("role not authorized")
	ErrUnknown      = errors.New("method has no authorization entry")
)

// Guard enforces the table on one gRPC server.
type Guard struct {
	clusterID string
	revoked   atomic.Pointer[func(nodeID string) bool]
	log       *slog.Logger
}

// NewGuard returns a guard for the servers of a member of clusterID.
func NewGuard(clusterID string, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Guard{clusterID: clusterID, log: log.With("component", "authz")}
}

// SetRevoked installs the revocation check: a node it reports is refused
// on every call, from then on.
func (g *Guard) SetRevoked(f func(nodeID string) bool) { g.revoked.Store(&f) }

func (g *Guard) isRevoked(nodeID string) bool {
	f := g.revoked.Load()
	return f != nil && (*f)(nodeID)
}

// Unary is the unary server interceptor.
func (g *Guard) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := g.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return h(ctx, req)
}

// Stream is the stream server interceptor.
func (g *Guard) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := g.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return h(srv, &callerStream{ServerStream: ss, ctx: ctx})
}

type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *callerStream) Context() context.Context { return s.ctx }

// authorize identifies the caller of method and checks the table. The
// returned context carries the caller (CallerFrom).
func (g *Guard) authorize(ctx context.Context, method string) (context.Context, error) {
	r, ok := table[method]
	if !ok {
		g.log.Error("call refused: method has no authorization entry", "method", method)
		return nil, status.Errorf(codes.PermissionDenied, "%s: %v", method, ErrUnknown)
	}
	c, err := peerCaller(ctx)
	if err != nil {
		if r.open {
			return ctx, nil
		}
		return nil, status.Errorf(codes.Unauthenticated, "%s: %v: this call needs a certificate of role %s of this cluster",
			method, err, strings.Join(r.roles, " or "))
	}
	if c.Local {
		c.ClusterID = g.clusterID
	}
	if err := g.check(c); err != nil {
		return nil, status.Errorf(codes.PermissionDenied, "%s: %v", method, err)
	}
	if c.Role == RoleManager {
		if fc, ok, err := forwardedCaller(ctx, c); err != nil {
			return nil, status.Errorf(codes.PermissionDenied, "%s: %v", method, err)
		} else if ok {
			if err := g.check(fc); err != nil {
				return nil, status.Errorf(codes.PermissionDenied, "%s: %v", method, err)
			}
			c = fc
		}
	}
	if !r.allows(c.Role) {
		return nil, status.Errorf(codes.PermissionDenied, "%s: %v: %s may not make this call as role %s (allowed: %s)",
			method, ErrRole, c, c.Role, strings.Join(r.roles, ", "))
	}
	return WithCaller(ctx, c), nil
}

// check refuses a caller of another cluster or a revoked node.
func (g *Guard) check(c Caller) error {
	if c.Local {
		return nil
	}
	if c.ClusterID != g.clusterID {
		return fmt.Errorf("%w: %s has a certificate of cluster %q; this is cluster %q", ErrWrongCluster, c, c.ClusterID, g.clusterID)
	}
	if g.isRevoked(c.NodeID) {
		return fmt.Errorf("%w: node %s was removed from the cluster", ErrRevoked, c.NodeID)
	}
	return nil
}
