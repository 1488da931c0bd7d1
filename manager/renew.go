package manager

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/shoal-sched/shoal/manager/ca"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/join"
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

// renew keeps this manager's certificate fresh. It renews at the managers
// (the leader first) like any node, so that the leader sees it move to a
// new root during a rotation; every manager signs, itself included.
func (m *Manager) renew(ctx context.Context, node *raftstore.Node) {
	managers := func() []string {
		v := node.State().Read()
		var out []string
		if id, _ := node.Leader(); id != "" {
			if rec, ok := v.Manager(id); ok && rec.Addr != "" {
				out = append(out, rec.Addr)
			}
		}
		for _, rec := range v.Managers() {
			if rec.Addr != "" && !slices.Contains(out, rec.Addr) {
				out = append(out, rec.Addr)
			}
		}
		if len(out) == 0 {
			out = append(out, m.advertise)
		}
		return out
	}
	r := &pki.Renewer{
		Creds: m.creds, Issuer: &join.Remote{Creds: m.creds, Managers: managers},
		StatusInterval: m.cfg.CertStatusInterval, Logger: m.cfg.Logger,
	}
	if err := r.Run(ctx); err != nil {
		m.log.Error("certificate renewal stopped", "err", err)
	}
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
