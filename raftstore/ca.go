package raftstore

import (
	"fmt"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// CmdSetCA is the command type of SetCA (numbers from 100 are the
// certificate authority's).
const CmdSetCA CommandType = 100

// tableCA holds the one ClusterCA row.
const (
	tableCA = "ca"
	caKey   = "ca"
)

// SetCA installs the cluster's certificate authority (ExpectedVersion 0
// when there is none yet: the first leader of a new cluster) or replaces
// it (ExpectedVersion = the Version the proposer read: token and root
// rotations started on two managers at once cannot both win). The FSM
// sets Version and UpdatedAt.
type SetCA struct {
	CA              api.ClusterCA
	ExpectedVersion uint64
	At              time.Time `json:",omitzero"`
}

func (SetCA) commandType() CommandType { return CmdSetCA }

func (t *tx) setCA(c SetCA) (any, error) {
	if err := checkCA(c.CA); err != nil {
		return nil, err
	}
	cur, ok := t.first(tableCA, "id", caKey).(*api.ClusterCA)
	switch {
	case ok && c.ExpectedVersion == 0:
		return nil, fmt.Errorf("cluster CA: %w (version %d); name the version to replace it", ErrAlreadyExists, cur.Version)
	case !ok && c.ExpectedVersion != 0:
		return nil, fmt.Errorf("cluster CA version %d: %w", c.ExpectedVersion, ErrNotFound)
	case ok && cur.Version != c.ExpectedVersion:
		return nil, fmt.Errorf("cluster CA: %w: version %d, the change was made on %d", ErrConflict, cur.Version, c.ExpectedVersion)
	}
	ca := c.CA.Clone()
	ca.Version = c.ExpectedVersion + 1
	ca.UpdatedAt = c.At
	t.insert(tableCA, &ca)
	return ca.Clone(), nil
}

// checkCA refuses a CA record no manager could use.
func checkCA(ca api.ClusterCA) error {
	switch {
	case len(ca.RootCert) == 0 || len(ca.RootKey) == 0:
		return fmt.Errorf("cluster CA: root certificate and key: empty: %w", ErrInvalid)
	case ca.WorkerSecret == "" || ca.ManagerSecret == "":
		return fmt.Errorf("cluster CA: join token secret: empty: %w", ErrInvalid)
	case ca.WorkerSecret == ca.ManagerSecret:
		return fmt.Errorf("cluster CA: the worker and manager token secrets are equal: %w", ErrInvalid)
	case len(ca.RetiredSecrets) > api.MaxRetiredSecrets:
		return fmt.Errorf("cluster CA: %d retired token secrets, more than %d: %w", len(ca.RetiredSecrets), api.MaxRetiredSecrets, ErrInvalid)
	case ca.Rotation != nil && (len(ca.Rotation.NewCert) == 0 || len(ca.Rotation.NewKey) == 0 || len(ca.Rotation.CrossSigned) == 0):
		return fmt.Errorf("cluster CA: rotation without a new root, key or cross-signed root: %w", ErrInvalid)
	}
	return nil
}

// CA returns the cluster's certificate authority (a copy), if it has one.
func (v *View) CA() (api.ClusterCA, bool) {
	c, ok := v.first(tableCA, "id", caKey).(*api.ClusterCA)
	if !ok {
		return api.ClusterCA{}, false
	}
	return c.Clone(), true
}
