package controlapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// Metadata key carried by a forwarded call (besides the request ID of a
// write, shoalpb.RequestIDKey).
const (
	// mdForwardedBy names the manager that forwarded the call. A manager
	// never forwards a forwarded call again: that is how loops are avoided
	// while leadership moves.
	mdForwardedBy = "shoal-forwarded-by"
)

// retryInterval is the pause between two attempts to reach the leader while
// an election runs.
const retryInterval = 50 * time.Millisecond

// errForwardedToFollower is answered to a forwarded call that reached a
// manager that is not (or no longer) the leader; the forwarder retries.
var errForwardedToFollower = errors.New("not the leader")

// onLeader runs local on this manager if it is the leader, and otherwise
// forwards the call to the leader with remote. While there is no leader
// (an election, or no quorum) it retries until LeaderTimeout, then fails
// with codes.Unavailable and the no-quorum message. local returns domain
// errors; the result is mapped to a gRPC status. A local attempt whose
// commit is uncertain is retried only if it was a request (commit), which
// the FSM applies once.
func onLeader[T any](ctx context.Context, s *Server,
	local func(context.Context) (T, error),
	remote func(context.Context, shoalpb.ControlClient) (T, error),
) (T, error) {
	var zero T
	wctx, cancel := context.WithTimeout(ctx, s.leaderTimeout)
	defer cancel()
	forwardedBy := forwardedBy(ctx)
	for {
		id, _ := s.raft.Leader()
		switch {
		case id == s.id:
			v, err := local(wctx)
			if !retrySafe(err) {
				return v, toStatus(err)
			}
		case forwardedBy != "":
			// The forwarder picks the leader again and retries; waiting
			// here too would only hide the election from it.
			return zero, status.Errorf(codes.Unavailable,
				"manager %s: %v (leader is %q); forwarded by %s, retry", s.id, errForwardedToFollower, id, forwardedBy)
		case id != "":
			v, err := forward(wctx, s, id, remote)
			if err == nil || !retryableRemote(err) {
				return v, err
			}
			s.log.Debug("forward to leader failed, retrying", "leader_id", id, "err", err)
		}
		select {
		case <-ctx.Done():
			return zero, toStatus(ctx.Err())
		case <-wctx.Done():
			return zero, s.noQuorum(ctx)
		case <-time.After(retryInterval):
		}
	}
}

// retryableRemote reports whether a forwarded call failed for want of a
// leader (the old leader is gone, or the callee lost leadership) rather
// than with the leader's answer.
func retryableRemote(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// forward sends the call to the leader's gRPC address, read from the
// managers recorded in the state.
func forward[T any](ctx context.Context, s *Server, leaderID string,
	remote func(context.Context, shoalpb.ControlClient) (T, error),
) (T, error) {
	var zero T
	m, ok := s.state().Read().Manager(leaderID)
	if !ok || m.Addr == "" {
		return zero, status.Errorf(codes.Unavailable, "leader %s has no recorded gRPC address yet", leaderID)
	}
	conn, err := s.peers.conn(m.Addr)
	if err != nil {
		return zero, status.Errorf(codes.Unavailable, "leader %s at %s: %v", leaderID, m.Addr, err)
	}
	ctx = metadata.AppendToOutgoingContext(authz.ForwardContext(ctx), mdForwardedBy, s.id)
	return remote(ctx, shoalpb.NewControlClient(conn))
}

// forwardedBy returns the manager that forwarded this call, or "".
func forwardedBy(ctx context.Context) string { return incoming(ctx, mdForwardedBy) }

func incoming(ctx context.Context, key string) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// noQuorum builds the error for a cluster without a leader, with how many
// managers this one can reach, so an operator sees at once how far from a
// majority the cluster is.
func (s *Server) noQuorum(ctx context.Context) error {
	reach := s.reachability(ctx)
	up := 0
	for _, ok := range reach {
		if ok {
			up++
		}
	}
	return status.Errorf(codes.Unavailable,
		"%v (%d of %d managers reachable): writes need a majority; reads can use --stale",
		raftstore.ErrNoLeader, up, len(reach))
}

// reachability tells, for every voter in the Raft configuration (or, if
// that cannot be read, every recorded manager), whether it answers a
// health probe now. This manager counts as reachable.
func (s *Server) reachability(ctx context.Context) map[string]bool {
	addrs := map[string]string{}
	v := s.state().Read()
	if members, err := s.raft.Members(); err == nil && len(members) > 0 {
		for _, m := range members {
			if m.Voter {
				rec, _ := v.Manager(m.ID)
				addrs[m.ID] = rec.Addr
			}
		}
	} else {
		for _, m := range v.Managers() {
			addrs[m.ID] = m.Addr
		}
	}
	delete(addrs, s.id)
	out := make(map[string]bool, len(addrs)+1)
	out[s.id] = true
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := s.probe(ctx, addr)
			mu.Lock()
			out[id] = ok
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// probe reports whether the manager at addr answers a health check within
// ProbeTimeout.
func (s *Server) probe(ctx context.Context, addr string) bool {
	if addr == "" {
		return false
	}
	conn, err := s.peers.conn(addr)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, s.probeTimeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
}

// peers keeps one client connection per manager address.
type peers struct {
	tls   *tls.Config // nil: plaintext (tests)
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func newPeers(cfg *tls.Config) *peers { return &peers{tls: cfg, conns: map[string]*grpc.ClientConn{}} }

// conn returns the connection to addr. Reconnects back off for at most a
// second, so a manager that restarts on the same address is reached again
// quickly.
func (p *peers) conn(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, append(authz.DialOptions(p.tls),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}))...)
	if err != nil {
		return nil, fmt.Errorf("dial manager %s: %w", addr, err)
	}
	p.conns[addr] = c
	return c, nil
}

func (p *peers) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for addr, c := range p.conns {
		errs = append(errs, c.Close())
		delete(p.conns, addr)
	}
	return errors.Join(errs...)
}
