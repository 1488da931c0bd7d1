package ca

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/raftstore"
)

// ErrRotating: a root rotation is already running.
var ErrRotating = errors.New("a root CA rotation is already running")

// rotationCheckInterval is how often the leader checks whether every node
// holds a certificate of the new root.
const rotationCheckInterval = time.Second

// StartRotation returns rec with a rotation begun: a new root, its key,
// and the new root cross-signed by the current one. From its commit on,
// certificates are signed by the new key, both roots are trusted, and
// nodes are told to renew.
func StartRotation(rec api.ClusterCA, now time.Time) (api.ClusterCA, error) {
	if rec.Rotation != nil {
		return rec, fmt.Errorf("%w (started %s)", ErrRotating, rec.Rotation.StartedAt.UTC().Format(time.RFC3339))
	}
	root, err := Root(rec)
	if err != nil {
		return rec, err
	}
	next, cross, err := root.NewRootFor(now)
	if err != nil {
		return rec, err
	}
	out := rec.Clone()
	out.Rotation = &api.CARotation{NewCert: next.CertPEM(), NewKey: next.KeyPEM(), CrossSigned: cross, StartedAt: now}
	return out, nil
}

// FinishRotation returns rec with the new root as the only root and new
// join tokens (their digest is the new root's; the old tokens' secrets are
// retired).
func FinishRotation(rec api.ClusterCA) (api.ClusterCA, error) {
	if rec.Rotation == nil {
		return rec, errors.New("finish rotation: none is running")
	}
	next, err := pki.ParseRootCA(rec.Rotation.NewCert, rec.Rotation.NewKey)
	if err != nil {
		return rec, err
	}
	fresh, err := NewClusterCA(next)
	if err != nil {
		return rec, err
	}
	fresh.RetiredSecrets = retire(retire(rec.RetiredSecrets, rec.WorkerSecret), rec.ManagerSecret)
	fresh.Version = rec.Version
	return fresh, nil
}

// rotationTracker remembers, on one manager, which nodes have shown it a
// certificate of the new root (a renewal it signed, or a status call made
// with one). It is not replicated: a new leader learns it again from the
// nodes' next status calls.
type rotationTracker struct {
	mu      sync.Mutex
	root    string // digest of the rotation's new root the set is for
	renewed map[string]bool
}

func (t *rotationTracker) mark(rec api.ClusterCA, nodeID string) {
	if rec.Rotation == nil {
		return
	}
	d := newRootDigest(rec)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.root != d {
		t.root, t.renewed = d, map[string]bool{}
	}
	t.renewed[nodeID] = true
}

func (t *rotationTracker) has(rec api.ClusterCA, nodeID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.root == newRootDigest(rec) && t.renewed[nodeID]
}

func newRootDigest(rec api.ClusterCA) string {
	if rec.Rotation == nil {
		return ""
	}
	r, err := pki.ParseRootCA(rec.Rotation.NewCert, nil)
	if err != nil {
		return ""
	}
	return r.Digest()
}

// Progress is how far a rotation has come: the nodes and managers that
// must move to the new root (managers, and nodes that are not down) and
// those that have not yet, by ID.
type Progress struct {
	Rotating bool
	Renewed  int
	Total    int
	Pending  []string
}

// Progress reports the rotation in v as this manager has seen it.
func (s *Server) Progress(v *raftstore.View) Progress {
	rec, ok := v.CA()
	if !ok || rec.Rotation == nil {
		return Progress{}
	}
	var ids []string
	for _, m := range v.Managers() {
		ids = append(ids, m.ID)
	}
	for _, n := range v.Nodes() {
		if n.Status != api.NodeDown {
			ids = append(ids, n.ID)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	p := Progress{Rotating: true, Total: len(ids)}
	for _, id := range ids {
		if s.tracker.has(rec, id) || (s.self != nil && id == s.self.Identity().NodeID && !NeedsRenewal(rec, s.self.Leaf())) {
			p.Renewed++
			continue
		}
		p.Pending = append(p.Pending, id)
	}
	return p
}

// RunRotation is a leader duty: while a rotation runs it waits until every
// manager and every node that is not down holds a certificate of the new
// root, then commits the end of the rotation (the old root dropped, new
// join tokens).
func (s *Server) RunRotation(ctx context.Context, applier raftstore.Applier) error {
	t := time.NewTicker(rotationCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		v := s.state.Read()
		p := s.Progress(v)
		if !p.Rotating || len(p.Pending) > 0 {
			continue
		}
		rec, _ := v.CA()
		done, err := FinishRotation(rec)
		if err != nil {
			return err
		}
		if _, err := applier.Apply(ctx, raftstore.SetCA{CA: done, ExpectedVersion: rec.Version, At: time.Now().UTC()}); err != nil {
			return fmt.Errorf("finish the root rotation: %w", err)
		}
		s.log.Info("root CA rotation finished: the old root is no longer trusted, new join tokens made", "nodes", p.Total)
	}
}
