package raftstore

import (
	"time"

	"github.com/hashicorp/go-memdb"
)

// Revocation is a node ID whose certificate is refused on every link from
// the moment it is committed: removing a node revokes it. Node IDs are
// chosen by the managers and never reused, so the ID alone names the
// certificates to refuse.
type Revocation struct {
	NodeID string
	At     time.Time
}

func revokedTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableRevoked, Indexes: map[string]*memdb.IndexSchema{
		"id": idIndex(func(o any) string { return o.(*Revocation).NodeID }),
	}}
}

// revoke records id as revoked (once; the first time is kept).
func (t *tx) revoke(id string, at time.Time) {
	if t.first(tableRevoked, "id", id) != nil {
		return
	}
	t.insert(tableRevoked, &Revocation{NodeID: id, At: at})
}

// Revoked reports whether node id was revoked.
func (v *View) Revoked(id string) bool {
	return id != "" && v.first(tableRevoked, "id", id) != nil
}

// Revocations lists the revoked node IDs, in ID order.
func (v *View) Revocations() []Revocation {
	var out []Revocation
	for _, r := range collect[*Revocation](v.get(tableRevoked, "id")) {
		out = append(out, *r)
	}
	return out
}
