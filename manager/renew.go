package manager

import (
	"context"
	"fmt"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/ca"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/raftstore"
)

// bootstrapCA is the command that records the CA this manager made when it
// bootstrapped the cluster, if the state has no CA yet (nil otherwise).
func (m *Manager) bootstrapCA(v *raftstore.View) (raftstore.Command, error) {
	if _, ok := v.CA(); ok {
		return nil, nil
	}
	rec, ok, err := pendingCA(m.cfg.DataDir)
	if err != nil || !ok {
		// A leader without the bootstrap file did not make the cluster:
		// the CA arrives with the log it has yet to apply.
		return nil, err
	}
	return raftstore.SetCA{CA: rec, At: time.Now().UTC()}, nil
}

// renew keeps this manager's certificate fresh. A manager signs its own
// renewal with the CA in its local state: it holds the key.
func (m *Manager) renew(ctx context.Context, node *raftstore.Node) {
	r := &pki.Renewer{Creds: m.creds, Issuer: &localIssuer{state: node.State(), creds: m.creds}, Logger: m.cfg.Logger}
	if err := r.Run(ctx); err != nil {
		m.log.Error("certificate renewal stopped", "err", err)
	}
}

// localIssuer is the CA in this manager's state, as a pki.Issuer.
type localIssuer struct {
	state *raftstore.State
	creds *pki.Credentials
}

func (l *localIssuer) current() (api.ClusterCA, api.ClusterSettings, error) {
	v := l.state.Read()
	rec, ok := v.CA()
	if !ok {
		return rec, api.ClusterSettings{}, fmt.Errorf("renew: %w", ca.ErrNoCA)
	}
	return rec, v.Cluster().Settings, nil
}

func (l *localIssuer) Status(context.Context) (bool, []byte, error) {
	rec, _, err := l.current()
	if err != nil {
		return false, nil, err
	}
	return ca.NeedsRenewal(rec, l.creds.Leaf()), ca.TrustedRoots(rec), nil
}

func (l *localIssuer) Renew(_ context.Context, csr []byte) ([]byte, []byte, error) {
	rec, settings, err := l.current()
	if err != nil {
		return nil, nil, err
	}
	id := l.creds.Identity()
	cert, err := ca.Issue(rec, settings, csr, pki.Identity{NodeID: id.NodeID, Role: id.Role}, 0, time.Now())
	if err != nil {
		return nil, nil, err
	}
	return cert, ca.TrustedRoots(rec), nil
}

// JoinToken returns the cluster's join token for role (pki.RoleWorker or
// pki.RoleManager) from this manager's local state; ca.ErrNoCA until the
// first leader has recorded the CA.
func (m *Manager) JoinToken(role string) (string, error) {
	node := m.Raft()
	if node == nil {
		return "", fmt.Errorf("join token: manager %s is not running", m.id)
	}
	rec, ok := node.State().Read().CA()
	if !ok {
		return "", fmt.Errorf("join token: %w", ca.ErrNoCA)
	}
	w, mgr, err := ca.Tokens(rec)
	if err != nil {
		return "", err
	}
	switch role {
	case pki.RoleWorker:
		return w.String(), nil
	case pki.RoleManager:
		return mgr.String(), nil
	}
	return "", fmt.Errorf("join token: role %q: want worker or manager", role)
}
