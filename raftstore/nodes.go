package raftstore

import (
	"fmt"
	"maps"
	"reflect"
	"time"

	"github.com/shoal-sched/shoal/api"
)

func (t *tx) node(id string) *api.Node {
	n, _ := t.first(tableNodes, "id", id).(*api.Node)
	return n
}

func validRole(r api.NodeRole) bool {
	return r == api.RoleManager || r == api.RoleWorker
}

func validAvailability(a api.NodeAvailability) bool {
	return a == api.AvailabilityActive || a == api.AvailabilityPause || a == api.AvailabilityDrain
}

func validNodeStatus(s api.NodeStatus) bool {
	return s == api.NodeReady || s == api.NodeDown || s == api.NodeUnknown || s == api.NodeRestarting
}

const wantNodeStatus = "want ready, restarting, down or unknown"

func checkNode(n *api.Node) error {
	switch {
	case n.ID == "":
		return fmt.Errorf("node %q: id: empty: %w", n.Hostname, ErrInvalid)
	case n.Role != "" && !validRole(n.Role):
		return fmt.Errorf("node %q: role %q: want manager or worker: %w", n.ID, n.Role, ErrInvalid)
	case n.Availability != "" && !validAvailability(n.Availability):
		return fmt.Errorf("node %q: availability %q: want active, pause or drain: %w", n.ID, n.Availability, ErrInvalid)
	case n.Status != "" && !validNodeStatus(n.Status):
		return fmt.Errorf("node %q: status %q: %s: %w", n.ID, n.Status, wantNodeStatus, ErrInvalid)
	case n.Status == api.NodeRestarting:
		// A hold is only ever set by SetNodeStatus, which checks it.
		return fmt.Errorf("node %q: status restarting: set by the agent's restart notice, not by a registration: %w", n.ID, ErrInvalid)
	case n.Resources.NanoCPUs < 0 || n.Resources.MemoryBytes < 0:
		return fmt.Errorf("node %q: resources %+v: negative: %w", n.ID, n.Resources, ErrInvalid)
	}
	return nil
}

// upsertNode registers a node or refreshes what it reports of itself. On an
// existing node the operator's availability and labels are kept, and an
// empty status means "unchanged". A refresh that changes nothing is a no-op.
func (t *tx) upsertNode(c UpsertNode) (any, error) {
	if c.Node == nil {
		return nil, fmt.Errorf("node: missing: %w", ErrInvalid)
	}
	if err := checkNode(c.Node); err != nil {
		return nil, err
	}
	cur := t.node(c.Node.ID)
	if cur == nil {
		n := c.Node.Clone()
		n.Role = t.roleOf(n.ID)
		if n.Availability == "" {
			n.Availability = api.AvailabilityActive
		}
		if n.Status == "" {
			n.Status = api.NodeUnknown
		}
		n.RestartDeadline = time.Time{}
		n.Version = 1
		if n.CreatedAt.IsZero() {
			n.CreatedAt = n.UpdatedAt
		}
		t.insert(tableNodes, n)
		t.event("node", "create", Event{Node: n})
		return n, nil
	}
	n := refreshed(cur, c.Node, t.roleOf(cur.ID))
	if reflect.DeepEqual(n, cur) {
		return cur, nil
	}
	return t.putNode(n, c.Node.UpdatedAt), nil
}

// refreshed is cur with what a registration reports of the node applied.
// The role is not the agent's to say: it follows the manager records.
func refreshed(cur, reported *api.Node, role api.NodeRole) *api.Node {
	n := cur.Clone()
	n.Hostname, n.Addr, n.Resources = reported.Hostname, reported.Addr, reported.Resources
	n.Role = role
	if reported.Status != "" {
		n.Status, n.StatusMessage = reported.Status, reported.StatusMessage
		n.RestartDeadline = time.Time{}
	}
	return n
}

// RegistrationChanges reports whether registering the reported node would
// change the stored one (nil: not stored). The stored role is current: the
// store changes it with the manager records. The dispatcher skips the Raft
// commit of a registration that changes nothing: an agent reconnecting
// after a leader change or a blip then costs no log entry, and a thousand
// of them do not queue behind each other in the log.
func RegistrationChanges(cur, reported *api.Node) bool {
	return cur == nil || !reflect.DeepEqual(refreshed(cur, reported, cur.Role), cur)
}

// putNode stores a changed node: one more version, updated at "at" (when
// the command carries a time).
func (t *tx) putNode(n *api.Node, at time.Time) *api.Node {
	n.Version++
	if !at.IsZero() {
		n.UpdatedAt = at
	}
	t.insert(tableNodes, n)
	t.event("node", "update", Event{Node: n})
	return n
}

// updateNode is an operator change of availability and labels.
func (t *tx) updateNode(c UpdateNode) (any, error) {
	cur := t.node(c.ID)
	if cur == nil {
		return nil, fmt.Errorf("node %q: %w", c.ID, ErrNotFound)
	}
	if c.ExpectedVersion != 0 && c.ExpectedVersion != cur.Version {
		return nil, fmt.Errorf("node %q: at version %d, expected %d: %w", c.ID, cur.Version, c.ExpectedVersion, ErrConflict)
	}
	if c.Availability != "" && !validAvailability(c.Availability) {
		return nil, fmt.Errorf("node %q: availability %q: want active, pause or drain: %w", c.ID, c.Availability, ErrInvalid)
	}
	for k := range c.LabelAdd {
		if k == "" {
			return nil, fmt.Errorf("node %q: label key: empty: %w", c.ID, ErrInvalid)
		}
	}
	n := cur.Clone()
	if c.Availability != "" {
		n.Availability = c.Availability
	}
	if len(c.LabelAdd) > 0 {
		if n.Labels == nil {
			n.Labels = make(map[string]string, len(c.LabelAdd))
		}
		maps.Copy(n.Labels, c.LabelAdd)
	}
	for _, k := range c.LabelRm {
		delete(n.Labels, k)
	}
	if reflect.DeepEqual(n, cur) {
		return cur, nil
	}
	return t.putNode(n, c.At), nil
}

// setNodeStatus records an observed status. What follows from a node going
// down (orphaning its tasks) is the orchestrators' job.
func (t *tx) setNodeStatus(c SetNodeStatus) (any, error) {
	cur := t.node(c.ID)
	if cur == nil {
		return nil, fmt.Errorf("node %q: %w", c.ID, ErrNotFound)
	}
	if !validNodeStatus(c.Status) {
		return nil, fmt.Errorf("node %q: status %q: %s: %w", c.ID, c.Status, wantNodeStatus, ErrInvalid)
	}
	deadline := c.RestartDeadline
	switch {
	case c.Status != api.NodeRestarting:
		deadline = time.Time{}
	case !deadline.After(c.At):
		return nil, fmt.Errorf("node %q: status restarting: restart deadline %s is not after %s: %w",
			c.ID, deadline.Format(time.RFC3339Nano), c.At.Format(time.RFC3339Nano), ErrInvalid)
	}
	if c.ExpectedVersion != 0 && c.ExpectedVersion != cur.Version {
		return nil, fmt.Errorf("node %q: at version %d, expected %d: %w", c.ID, cur.Version, c.ExpectedVersion, ErrConflict)
	}
	if cur.Status == c.Status && cur.StatusMessage == c.Message && cur.RestartDeadline.Equal(deadline) {
		return cur, nil
	}
	n := cur.Clone()
	n.Status, n.StatusMessage, n.RestartDeadline = c.Status, c.Message, deadline
	return t.putNode(n, c.At), nil
}

// removeNode deletes the node record only; its tasks keep their NodeID so
// the orchestrators can see and replace them.
func (t *tx) removeNode(c RemoveNode) (any, error) {
	cur := t.node(c.ID)
	if cur == nil {
		return nil, fmt.Errorf("node %q: %w", c.ID, ErrNotFound)
	}
	t.remove(tableNodes, cur)
	t.revoke(cur.ID, c.At)
	t.requestGossipRotation()
	t.event("node", "remove", Event{Node: cur})
	return cur, nil
}
