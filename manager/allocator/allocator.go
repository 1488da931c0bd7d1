package allocator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// minPassInterval spaces passes out, as the orchestrator's do.
const minPassInterval = 10 * time.Millisecond

// retryDelay is the wait after a pass that could not commit.
const retryDelay = time.Second

// Allocator is the leader duty; Run it while leading.
type Allocator struct {
	state   *raftstore.State
	applier raftstore.Applier
	log     *slog.Logger
	now     func() time.Time
}

// New returns an allocator over state, committing through applier.
func New(state *raftstore.State, applier raftstore.Applier, log *slog.Logger) *Allocator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Allocator{state: state, applier: applier, log: log.With("component", "allocator"), now: time.Now}
}

// Run allocates at start and after every change of the state until ctx
// ends (nil) or this manager stops leading (an error).
func (a *Allocator) Run(ctx context.Context) error {
	a.log.Info("allocator started")
	defer a.log.Info("allocator stopped")
	for {
		changed := a.state.Changed()
		wait := time.Duration(0)
		if err := a.Pass(ctx); err != nil {
			if errors.Is(err, raftstore.ErrNotLeader) {
				return fmt.Errorf("allocator: %w", err)
			}
			if ctx.Err() != nil {
				return nil
			}
			a.log.Warn("allocation not committed; retrying", "err", err, "retry_in", retryDelay.String())
			wait = retryDelay
		}
		if !sleep(ctx, minPassInterval) {
			return nil
		}
		if wait > 0 {
			if !sleep(ctx, wait) {
				return nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Pass plans from the current state and commits the plan (one entry, or
// the ingress network first).
func (a *Allocator) Pass(ctx context.Context) error {
	v := a.state.Read()
	nets := v.Networks()
	if len(nets) == 0 && !v.AnyServicePublishes() {
		// No network and no published port: nothing to allocate, and no
		// need to read every task (the common case of a cluster without
		// networks). The pass runs after every write: it lists nothing.
		return nil
	}
	services := v.Services()
	plan := Compute(Inputs{
		Networks: nets, Services: services, Tasks: v.Tasks(),
		SpecOf: func(t *api.Task) *api.ServiceSpec { return v.ServiceSpec(t.ServiceID, t.SpecVersion) },
	})
	if plan.Empty() {
		return nil
	}
	at := a.now().UTC()
	if plan.CreateIngress {
		n, err := IngressNetwork(v.Networks())
		if err != nil {
			return err
		}
		n.ID = newID()
		_, err = a.applier.Apply(ctx, raftstore.CreateNetwork{Network: n, At: at})
		if err == nil {
			a.log.Info("created the ingress network", "subnet", n.Subnet, "vni", n.VNI)
		}
		return err
	}
	cmds := []raftstore.Command{}
	if len(plan.Alloc.Services) > 0 || len(plan.Alloc.Tasks) > 0 {
		plan.Alloc.At = at
		cmds = append(cmds, plan.Alloc)
	}
	if len(plan.Pending) > 0 {
		for _, p := range plan.Pending {
			a.log.Warn("task cannot be allocated", "task_id", p.TaskID, "reason", p.Reason)
		}
		cmds = append(cmds, raftstore.AssignTasks{Pending: plan.Pending, At: at})
	}
	_, err := a.applier.Apply(ctx, raftstore.Batch{Commands: cmds})
	if err == nil {
		a.log.Debug("allocated", "services", len(plan.Alloc.Services), "tasks", len(plan.Alloc.Tasks), "pending", len(plan.Pending))
	}
	return err
}

// IngressNetwork is the routing mesh's network as the leader creates it
// (without its ID).
func IngressNetwork(networks []*api.Network) (*api.Network, error) {
	if n := Overlap(IngressSubnet, networks); n != nil {
		return nil, fmt.Errorf("ingress subnet %s overlaps network %q (%s)", IngressSubnet, n.Spec.Name, n.Subnet)
	}
	vni, err := PickVNI(networks)
	if err != nil {
		return nil, err
	}
	return &api.Network{
		Spec:   api.NetworkSpec{Name: api.NetworkIngress, Driver: api.NetworkDriverOverlay},
		Subnet: IngressSubnet.String(), Gateway: Gateway(IngressSubnet).String(), VNI: vni, Ingress: true,
	}, nil
}

// NewNetwork completes a user's network spec with what the leader
// allocates: the subnet (the one asked for, else a free /24 of the default
// pool), its gateway and a VNI. The ID is the caller's.
func NewNetwork(spec api.NetworkSpec, networks []*api.Network) (*api.Network, error) {
	var pfx netip.Prefix
	var err error
	if spec.Subnet != "" {
		if pfx, err = netip.ParsePrefix(spec.Subnet); err != nil {
			return nil, err
		}
		pfx = pfx.Masked()
	} else if pfx, err = PickSubnet(networks); err != nil {
		return nil, err
	}
	vni, err := PickVNI(networks)
	if err != nil {
		return nil, err
	}
	if spec.Driver == "" {
		spec.Driver = api.NetworkDriverOverlay
	}
	return &api.Network{Spec: spec, Subnet: pfx.String(), Gateway: Gateway(pfx).String(), VNI: vni}, nil
}

// newID returns a random network ID in the control API's form (25 hex
// characters).
func newID() string {
	var b [13]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("allocator: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b[:])[:25]
}
