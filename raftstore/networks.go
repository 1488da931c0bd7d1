package raftstore

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/shoal-sched/shoal/api"
)

const tableNetworks = "networks"

// Network commands (the numbers are in the log format and never change).
const (
	CmdCreateNetwork    CommandType = 200
	CmdRemoveNetwork    CommandType = 201
	CmdAllocateNetworks CommandType = 202
)

// CreateNetwork adds a network with what the proposer allocated (subnet,
// gateway, VNI). The FSM refuses a taken name, a taken VNI, and a subnet
// that overlaps another network's: whatever the proposer believed, two
// networks never share an address or a VNI.
type CreateNetwork struct {
	Network *api.Network
	At      time.Time `json:",omitzero"`
}

// RemoveNetwork deletes a network; it is refused (ErrConflict) while a
// service's spec names it, and the refusal names that service.
type RemoveNetwork struct{ ID string }

// ServiceAllocation is what the allocator chose for one service.
type ServiceAllocation struct {
	ServiceID string
	Endpoint  api.ServiceEndpoint
}

// TaskAllocation is what the allocator chose for one task.
type TaskAllocation struct {
	TaskID   string
	Networks []api.NetworkAttachment
}

// AllocateNetworks commits the allocator's choices. A task's addresses are
// set once: a task that already has them, or that no longer exists, is
// skipped (counted in the result), so a repeated or late allocation never
// gives one task two sets of addresses.
type AllocateNetworks struct {
	Services []ServiceAllocation `json:",omitempty"`
	Tasks    []TaskAllocation    `json:",omitempty"`
	At       time.Time           `json:",omitzero"`
}

// AllocateResult is the response value of AllocateNetworks.
type AllocateResult struct {
	Services, Tasks int
	Skipped         []string // task or service IDs not written
}

func (CreateNetwork) commandType() CommandType    { return CmdCreateNetwork }
func (RemoveNetwork) commandType() CommandType    { return CmdRemoveNetwork }
func (AllocateNetworks) commandType() CommandType { return CmdAllocateNetworks }

func (t *tx) network(id string) *api.Network {
	n, _ := t.first(tableNetworks, "id", id).(*api.Network)
	return n
}

func (t *tx) allNetworks() []*api.Network {
	it, err := t.txn.Get(tableNetworks, "id")
	if err != nil {
		panic(fmt.Sprintf("raftstore: list networks: %v", err))
	}
	return collect[*api.Network](it)
}

func (t *tx) createNetwork(c CreateNetwork) (any, error) {
	n := c.Network
	if n == nil {
		return nil, fmt.Errorf("network: missing: %w", ErrInvalid)
	}
	if n.ID == "" || n.Spec.Name == "" {
		return nil, fmt.Errorf("network %q (id %q): name and id must be set: %w", n.Spec.Name, n.ID, ErrInvalid)
	}
	p, err := netip.ParsePrefix(n.Subnet)
	if err != nil || n.VNI == 0 {
		return nil, fmt.Errorf("network %q: subnet %q, vni %d: want a CIDR and a VNI: %w", n.Spec.Name, n.Subnet, n.VNI, ErrInvalid)
	}
	if t.network(n.ID) != nil {
		return nil, fmt.Errorf("network id %q: %w", n.ID, ErrAlreadyExists)
	}
	for _, o := range t.allNetworks() {
		switch op, _ := netip.ParsePrefix(o.Subnet); {
		case o.Spec.Name == n.Spec.Name:
			return nil, fmt.Errorf("network %q: %w", n.Spec.Name, ErrAlreadyExists)
		case o.VNI == n.VNI:
			return nil, fmt.Errorf("network %q: vni %d is network %q's: %w", n.Spec.Name, n.VNI, o.Spec.Name, ErrConflict)
		case op.IsValid() && op.Overlaps(p):
			return nil, fmt.Errorf("network %q: subnet %s overlaps network %q (%s): %w", n.Spec.Name, n.Subnet, o.Spec.Name, o.Subnet, ErrConflict)
		}
	}
	nn := n.Clone()
	t.insert(tableNetworks, nn)
	t.event("network", "create", Event{Network: nn})
	return nn, nil
}

func (t *tx) removeNetwork(c RemoveNetwork) (any, error) {
	n := t.network(c.ID)
	if n == nil {
		return nil, fmt.Errorf("network id %q: %w", c.ID, ErrNotFound)
	}
	for _, s := range t.services() {
		if api.UsesNetwork(&s.Spec, n) {
			return nil, fmt.Errorf("network %q is in use by service %q: remove the service or take it off the network first: %w",
				n.Spec.Name, s.Spec.Name, ErrConflict)
		}
	}
	t.remove(tableNetworks, n)
	t.event("network", "remove", Event{Network: n})
	return n, nil
}

func (t *tx) allocateNetworks(c AllocateNetworks) (any, error) {
	var res AllocateResult
	for _, a := range c.Services {
		cur := t.service(a.ServiceID)
		if cur == nil {
			res.Skipped = append(res.Skipped, a.ServiceID)
			continue
		}
		s := cur.Clone()
		s.Endpoint = a.Endpoint.Clone()
		t.insert(tableServices, s)
		t.event("service", "update", Event{Service: s})
		res.Services++
	}
	for _, a := range c.Tasks {
		cur := t.task(a.TaskID)
		if cur == nil || len(cur.Networks) > 0 {
			res.Skipped = append(res.Skipped, a.TaskID)
			continue
		}
		nt := revise(cur)
		nt.Networks = api.CloneAttachments(a.Networks)
		if nt.Status.PendingReason != "" && nt.Status.State <= api.TaskPending {
			nt.Status.PendingReason = ""
		}
		t.insert(tableTasks, nt)
		t.event("task", "update", Event{Task: nt})
		res.Tasks++
	}
	return res, nil
}

// Network returns the network with id, or nil.
func (v *View) Network(id string) *api.Network {
	n, _ := v.first(tableNetworks, "id", id).(*api.Network)
	return n
}

// NetworkByName returns the network named name, or nil.
func (v *View) NetworkByName(name string) *api.Network {
	n, _ := v.first(tableNetworks, "name", name).(*api.Network)
	return n
}

// Networks returns every network, sorted by name.
func (v *View) Networks() []*api.Network {
	return collect[*api.Network](v.get(tableNetworks, "name"))
}
