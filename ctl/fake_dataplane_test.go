package ctl

import (
	"context"
	"fmt"
	"sync"

	"github.com/shoal-sched/shoal/agent/network"
	"github.com/shoal-sched/shoal/api"
)

// fakeDataPlane is the seam fake of an agent's data plane for the e2e
// tests, whose agents run a fake runtime with no namespaces: it accepts a
// task once the leader's view holds every network the task is on (as the
// real one waits for them) and wires nothing, so the fake container runs
// as on the host network. Stack services are on STACK_default, so every
// stack test needs one.
type fakeDataPlane struct {
	mu   sync.Mutex
	view *api.NetworkView
}

func (d *fakeDataPlane) SetView(v *api.NetworkView) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.view = v
}

func (d *fakeDataPlane) Attach(_ context.Context, sb network.Sandbox) (network.Wiring, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range sb.Attachments {
		known := false
		for _, n := range d.viewNetworks() {
			known = known || n.ID == a.NetworkID
		}
		if !known {
			return network.Wiring{}, fmt.Errorf("fake data plane: network %s is not in the view yet", a.NetworkID)
		}
	}
	return network.Wiring{}, nil
}

func (d *fakeDataPlane) viewNetworks() []api.Network {
	if d.view == nil {
		return nil
	}
	return d.view.Networks
}

func (d *fakeDataPlane) Release(string) error          { return nil }
func (d *fakeDataPlane) Prune(map[string]bool) error   { return nil }
func (d *fakeDataPlane) Remove() error                 { return nil }
func (d *fakeDataPlane) Close()                        {}
func (d *fakeDataPlane) Run(ctx context.Context) error { <-ctx.Done(); return nil }
