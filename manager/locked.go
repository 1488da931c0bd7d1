package manager

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/internal/seal"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// errStoppedLocked: the manager was stopped while it waited to be unlocked.
var errStoppedLocked = errors.New("stopped while locked")

// serveLocked serves the manager's listeners while its data key is
// wrapped: every call is refused with a message saying what to do, except
// UnlockCluster through the unix socket, which ends it with the data key
// and the unlock key. Raft stays closed meanwhile (its listener is bound,
// nothing answers on it).
func (m *Manager) serveLocked(ctx context.Context) (key, unlock []byte, err error) {
	m.log.Warn("locked: the data key is wrapped with the cluster's unlock key; run shoalctl cluster unlock on this host")
	srv := &lockedServer{m: m, got: make(chan [2][]byte, 1)}
	gs := grpc.NewServer(m.lockedServerOptions()...)
	shoalpb.RegisterControlServer(gs, srv)
	var lns []*pausedListener
	var wg sync.WaitGroup
	for _, l := range []net.Listener{m.tcp, m.unix} {
		if l == nil {
			continue
		}
		pl := &pausedListener{Listener: l}
		lns = append(lns, pl)
		wg.Go(func() { _ = gs.Serve(pl) })
	}
	defer func() {
		// The unlock call gets its answer before the server goes; the
		// listeners are then handed to the real server.
		stopGRPC(gs)
		wg.Wait()
		for _, pl := range lns {
			pl.resume()
		}
	}()
	select {
	case got := <-srv.got:
		m.log.Info("unlocked")
		return got[0], got[1], nil
	case <-ctx.Done():
		return nil, nil, errStoppedLocked
	case <-m.crashed:
		return nil, nil, errStoppedLocked
	}
}

// lockedServerOptions are the real server's transport and authorisation
// (TLS with the manager's certificate on TCP, plaintext on the socket, the
// guard's table), then the refusal of every call but UnlockCluster. The
// certificate and its key are not Raft data: they are read before the
// unlock, so clients speak to a locked manager as to an unlocked one and
// read the refusal as a gRPC status. The guard has no revocations to read
// (they are in Raft): a revoked node with a valid certificate gets the
// same refusal as everyone, since nothing but the unlock on the socket is
// served.
func (m *Manager) lockedServerOptions() []grpc.ServerOption {
	serverTLS, _, _ := m.tlsFor()
	var guard *authz.Guard
	if serverTLS != nil {
		guard = authz.NewGuard(m.clusterID(), m.cfg.Logger)
	}
	refuse := status.Errorf(codes.FailedPrecondition, "manager %s is %v on its host", m.id, seal.ErrLocked)
	return append(authz.ServerOptions(serverTLS, guard),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if info.FullMethod == shoalpb.Control_UnlockCluster_FullMethodName {
				return h(ctx, req)
			}
			return nil, refuse
		}),
		grpc.ChainStreamInterceptor(func(any, grpc.ServerStream, *grpc.StreamServerInfo, grpc.StreamHandler) error { return refuse }),
		grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error { return refuse }),
	)
}

// lockedServer answers UnlockCluster; the interceptors refuse the rest.
type lockedServer struct {
	shoalpb.UnimplementedControlServer
	m    *Manager
	once sync.Once
	got  chan [2][]byte
}

func (s *lockedServer) UnlockCluster(ctx context.Context, req *shoalpb.UnlockClusterRequest) (*shoalpb.UnlockClusterResponse, error) {
	if p, ok := peer.FromContext(ctx); !ok || p.Addr == nil || p.Addr.Network() != "unix" {
		return nil, status.Error(codes.PermissionDenied,
			"unlock a manager through its control socket, on its host (shoalctl --host unix:///var/lib/shoal/manager/control.sock cluster unlock)")
	}
	unlock, err := seal.ParseUnlockKey(req.GetUnlockKey())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "unlock_key: %v", err)
	}
	st, err := seal.LoadKey(s.m.cfg.DataDir, unlock)
	if errors.Is(err, seal.ErrWrongUnlockKey) {
		s.m.log.Warn("unlock refused: wrong unlock key")
		return nil, status.Error(codes.PermissionDenied, "wrong unlock key: it does not open this manager's data key (was it rotated? shoalctl cluster unlock-key on an unlocked manager shows the current one)")
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "unlock: %v", err)
	}
	s.once.Do(func() { s.got <- [2][]byte{st.Key, unlock} })
	return &shoalpb.UnlockClusterResponse{}, nil
}

// pausedListener lends a listener to the locked server: closing it stops
// Accept (through a deadline) without closing the listener itself, which
// the real server takes over once the manager is unlocked.
type pausedListener struct {
	net.Listener
	closed atomic.Bool
}

type deadliner interface{ SetDeadline(time.Time) error }

func (p *pausedListener) Accept() (net.Conn, error) {
	c, err := p.Listener.Accept()
	if p.closed.Load() {
		if c != nil {
			c.Close() // the client retries on the real server
		}
		return nil, net.ErrClosed
	}
	return c, err // as it is: gRPC retries temporary errors
}

func (p *pausedListener) Close() error {
	if p.closed.CompareAndSwap(false, true) {
		if d, ok := p.Listener.(deadliner); ok {
			return d.SetDeadline(time.Now())
		}
	}
	return nil
}

func (p *pausedListener) resume() {
	if d, ok := p.Listener.(deadliner); ok {
		_ = d.SetDeadline(time.Time{})
	}
}
