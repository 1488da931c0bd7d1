package ctl

import (
	"context"
	"errors"
	"fmt"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/stack"
)

// ensureStackNetworks makes the networks a stack's services are on before
// the services: its own (STACK_default and the top-level networks used)
// are created when missing, external ones must exist. A dry run only says
// what it would create.
func (g *globals) ensureStackNetworks(ctx context.Context, c *client, st *stack.Stack, dryRun bool) error {
	if len(st.Networks) == 0 && len(st.ExternalNetworks) == 0 {
		return nil
	}
	out := !g.structured(outputTable)
	resp, err := invoke(ctx, c, shoalpb.ControlClient.ListNetworks, &shoalpb.ListNetworksRequest{})
	if err != nil {
		return rpcError("", err)
	}
	have := map[string]bool{}
	for _, n := range resp.GetNetworks() {
		have[n.GetNetwork().GetSpec().GetName()] = true
	}
	for _, name := range st.ExternalNetworks {
		if !have[name] {
			return fmt.Errorf("network %q is external in the compose files and does not exist: create it first (shoalctl network create %s)", name, name)
		}
	}
	for _, spec := range st.Networks {
		if have[spec.Name] {
			continue
		}
		if dryRun {
			g.say(out, "Would create network %s\n", spec.Name)
			continue
		}
		g.say(out, "Creating network %s\n", spec.Name)
		if _, err := invoke(ctx, c, shoalpb.ControlClient.CreateNetwork, &shoalpb.CreateNetworkRequest{Spec: shoalpb.FromNetworkSpec(spec)}); err != nil {
			return rpcError(networkSubject(spec.Name), err)
		}
	}
	return nil
}

// removeStackNetworks removes the networks a stack created (labelled with
// it), after its services.
func (g *globals) removeStackNetworks(ctx context.Context, c *client, name string) ([]removed, error) {
	resp, err := invoke(ctx, c, shoalpb.ControlClient.ListNetworks, &shoalpb.ListNetworksRequest{})
	if err != nil {
		return nil, rpcError("", err)
	}
	var done []removed
	var errs []error
	for _, n := range resp.GetNetworks() {
		spec := n.GetNetwork().GetSpec()
		if spec.GetLabels()[api.LabelStack] != name {
			continue
		}
		if !g.structured(outputTable) {
			fmt.Fprintf(g.app.Out, "Removing network %s\n", spec.GetName())
		}
		r, err := invoke(ctx, c, shoalpb.ControlClient.RemoveNetwork, &shoalpb.RemoveNetworkRequest{Network: n.GetNetwork().GetId()})
		if err != nil {
			errs = append(errs, rpcError(networkSubject(spec.GetName()), err))
			continue
		}
		done = append(done, newRemoved(spec.GetName(), r.GetIndex()))
	}
	return done, errors.Join(errs...)
}
