package manager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/manager/dispatcher"
	"github.com/shoal-sched/shoal/manager/raftstream"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/raftstore"
)

// ErrNotAdmitted: a Raft peer is not a member of the Raft configuration,
// is not joining, or was revoked.
var ErrNotAdmitted = errors.New("not admitted to raft")

// credentialsFor is loadCredentials, except that a plaintext manager
// (benchmarks only) that joins makes its own certificate: there is no TLS
// to trade a token over.
func credentialsFor(ctx context.Context, cfg Config) (*pki.Credentials, error) {
	if cfg.Plaintext && cfg.Join != "" {
		if creds, err := pki.LoadCredentials(cfg.DataDir); err == nil {
			return creds, nil
		}
		return bootstrapCredentials(cfg.DataDir, time.Now())
	}
	return loadCredentials(ctx, cfg)
}

// tlsFor returns the TLS configuration of the manager's gRPC server and of
// its dials to other managers and to agents (nil, nil, nil in plaintext).
func (m *Manager) tlsFor() (server, managers, agents *tls.Config) {
	if m.cfg.Plaintext {
		return nil, nil, nil
	}
	c := m.creds
	return c.ServerTLS(), c.ClientTLS(), authz.ClientTLS(c, pki.RoleWorker, pki.RoleManager)
}

// clusterID is the cluster this manager's certificate is of.
func (m *Manager) clusterID() string { return m.creds.Identity().ClusterID }

// newGuard is the authorisation of the manager's gRPC server; revocations
// are read from the state.
func (m *Manager) newGuard(state *raftstore.State) *authz.Guard {
	g := authz.NewGuard(m.clusterID(), m.cfg.Logger)
	g.SetRevoked(func(id string) bool { return state.Read().Revoked(id) })
	return g
}

// raftStream is the TLS stream layer over the bound Raft listener (nil in
// plaintext: raftstore then speaks TCP over it).
func (m *Manager) raftStream() *raftstream.Stream {
	if m.cfg.Plaintext {
		return nil
	}
	return raftstream.New(raftstream.Config{
		Listener:  m.raftLn,
		ServerTLS: m.creds.ServerTLS(),
		ClientTLS: m.creds.ClientTLS(),
		Admit:     m.admitRaftPeer,
		Logger:    m.cfg.Logger,
	})
}

// admitRaftPeer lets a manager of this cluster speak Raft with this one if
// it is in the Raft configuration, or if this manager is joining (its
// configuration is still empty: the leader's first call brings it), and
// it was not revoked.
func (m *Manager) admitRaftPeer(peer authz.Caller) error {
	switch {
	case peer.Role != pki.RoleManager:
		return fmt.Errorf("%w: %s is not a manager", ErrNotAdmitted, peer)
	case peer.ClusterID != m.clusterID():
		return fmt.Errorf("%w: %s is of cluster %q", ErrNotAdmitted, peer, peer.ClusterID)
	}
	node := m.Raft()
	if node == nil {
		// Raft is opening; the peer tries again in a moment.
		return fmt.Errorf("%w: raft is starting", ErrNotAdmitted)
	}
	if node.State().Read().Revoked(peer.NodeID) {
		return fmt.Errorf("%w: %s was removed from the cluster", ErrNotAdmitted, peer)
	}
	members, err := node.Members()
	if err != nil {
		return fmt.Errorf("%w: raft configuration: %w", ErrNotAdmitted, err)
	}
	if len(members) == 0 {
		return nil
	}
	for _, mem := range members {
		if mem.ID == peer.NodeID {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is not in the raft configuration", ErrNotAdmitted, peer)
}

// streamLayer is the stream as raftstore takes it (a nil interface in
// plaintext).
func streamLayer(s *raftstream.Stream) raft.StreamLayer {
	if s == nil {
		return nil
	}
	return s
}

// sessionNodeID is the dispatcher's Identify: the node ID of the session's
// direct peer certificate.
func sessionNodeID(ctx context.Context) (string, error) {
	c, ok := authz.CallerFrom(ctx)
	switch {
	case !ok:
		return "", authz.ErrNoCertificate
	case c.Local || c.Via != "":
		return "", fmt.Errorf("%w: a session needs the node's own certificate", authz.ErrNoCertificate)
	}
	return c.NodeID, nil
}

// closeRevoked closes the Raft connections of every node revoked from now
// on (the guard refuses their calls, the dispatcher ends their sessions).
func (m *Manager) closeRevoked(ctx context.Context, state *raftstore.State) {
	if m.stream == nil {
		return
	}
	events, cancel := state.Subscribe(64)
	defer func() { cancel() }()
	for {
		select {
		case <-ctx.Done():
			return
		case batch, ok := <-events:
			if !ok {
				// Fell behind: check every revocation again.
				for _, r := range state.Read().Revocations() {
					m.stream.CloseNode(r.NodeID)
				}
				events, cancel = state.Subscribe(64)
				continue
			}
			for _, ev := range batch {
				if ev.Node != nil && ev.Action == "remove" && state.Read().Revoked(ev.Node.ID) {
					if n := m.stream.CloseNode(ev.Node.ID); n > 0 {
						m.log.Warn("closed the raft connections of a revoked node", "node_id", ev.Node.ID, "conns", n)
					}
				}
			}
		}
	}
}

func (m *Manager) setServer(gs *grpc.Server) {
	m.mu.Lock()
	m.gs = gs
	m.mu.Unlock()
}

// serviceInfo is what the running gRPC server serves (nil before Run).
func (m *Manager) serviceInfo() map[string]grpc.ServiceInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gs == nil {
		return nil
	}
	return m.gs.GetServiceInfo()
}

func (m *Manager) setDispatcher(d *dispatcher.Dispatcher) {
	m.mu.Lock()
	m.disp = d
	m.mu.Unlock()
}

// SessionCount is how many agents hold a session with this manager's
// dispatcher (0 unless it leads, or before Run).
func (m *Manager) SessionCount() int {
	m.mu.Lock()
	d := m.disp
	m.mu.Unlock()
	if d == nil {
		return 0
	}
	return d.SessionCount()
}

// ticketKeysEvery is how often the manager derives its session ticket keys
// again: a new ticket epoch or a rotated root applies within this.
const ticketKeysEvery = 10 * time.Second

// keepTicketKeys keeps this manager's TLS servers sealing session tickets
// with the cluster's keys (pki/tickets.go), so that an agent resumes here
// the TLS session it had with another manager. Until the state holds the
// CA (a joining manager), crypto/tls's own keys are used.
func (m *Manager) keepTicketKeys(ctx context.Context, state *raftstore.State) {
	if m.cfg.Plaintext {
		return
	}
	t := time.NewTicker(ticketKeysEvery)
	defer t.Stop()
	for {
		if ca, ok := state.Read().CA(); ok {
			if err := m.creds.SetTicketSecret(ca.RootKey); err != nil {
				m.log.Warn("session ticket keys not set", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
