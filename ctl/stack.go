package ctl

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/spf13/cobra"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func newStackCommand(g *globals) *cobra.Command {
	cmd := groupCommand("stack", "Deploy and manage stacks of services from compose files",
		`  shoalctl stack deploy -c compose.yaml shop
  shoalctl stack ls
  shoalctl stack ps shop
  shoalctl stack rm shop`)
	cmd.AddCommand(newStackDeployCommand(g), newStackLsCommand(g), newStackPsCommand(g),
		newStackServicesCommand(g), newStackRmCommand(g))
	return cmd
}

func stackSubject(name string) string { return fmt.Sprintf("stack %q", name) }

// listServices reads every service with its task counts.
func listServices(ctx context.Context, c *client, stale bool) ([]*shoalpb.ServiceSummary, error) {
	resp, err := listServicePages(ctx, c, stale)
	if err != nil {
		return nil, rpcError("", err)
	}
	return resp.GetServices(), nil
}

// inStack keeps the services labelled as part of stack name.
func inStack(all []*shoalpb.ServiceSummary, name string) []*shoalpb.ServiceSummary {
	var out []*shoalpb.ServiceSummary
	for _, s := range all {
		if s.GetService().GetSpec().GetLabels()[api.LabelStack] == name {
			out = append(out, s)
		}
	}
	return out
}

// stackServices reads the services of stack name; none is an error.
func stackServices(ctx context.Context, c *client, name string, stale bool) ([]*shoalpb.ServiceSummary, error) {
	all, err := listServices(ctx, c, stale)
	if err != nil {
		return nil, err
	}
	out := inStack(all, name)
	if len(out) == 0 {
		return nil, fmt.Errorf("stack %q not found: no service has the label %s=%s (see shoalctl stack ls)", name, api.LabelStack, name)
	}
	return out, nil
}

func newStackLsCommand(g *globals) *cobra.Command {
	var rf readFlags
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List stacks with their number of services",
		Example: `  shoalctl stack ls
  shoalctl stack ls --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				all, err := listServices(ctx, c, rf.stale)
				if err != nil {
					return err
				}
				return g.printStacks(all, rf)
			})
		},
	}
	rf.register(cmd, false)
	return cmd
}

// stackSummary is the JSON of one stack in `stack ls` (docs/cli-json.md).
type stackSummary struct {
	Name     string `json:"name"`
	Services int    `json:"services"`
}

func (g *globals) printStacks(all []*shoalpb.ServiceSummary, rf readFlags) error {
	counts := map[string]int{}
	for _, s := range all {
		if name, ok := s.GetService().GetSpec().GetLabels()[api.LabelStack]; ok {
			counts[name]++
		}
	}
	stacks := []stackSummary{}
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		stacks = append(stacks, stackSummary{Name: name, Services: counts[name]})
	}
	if g.structured(outputTable) {
		return g.writeValue(stacks)
	}
	w, err := rf.out(g.app.Out)
	if err != nil {
		return err
	}
	t := newTable(w, "NAME", "SERVICES")
	for _, s := range stacks {
		t.row(s.Name, fmt.Sprint(s.Services))
	}
	return t.flush()
}

func newStackServicesCommand(g *globals) *cobra.Command {
	var rf readFlags
	cmd := &cobra.Command{
		Use:   "services [OPTIONS] STACK",
		Short: "List the services of a stack",
		Example: `  shoalctl stack services shop
  shoalctl stack services --filter name=shop_web -q shop`,
		Args:              exactlyOne("STACK"),
		ValidArgsFunction: g.completeNames(stackNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(rf.filter, serviceFilterKeys...)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				svcs, err := stackServices(ctx, c, args[0], rf.stale)
				if err != nil {
					return err
				}
				return g.printServices(svcs, f, rf)
			})
		},
	}
	rf.registerList(cmd, serviceFilterKeys...)
	return cmd
}

func newStackPsCommand(g *globals) *cobra.Command {
	var rf readFlags
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS] STACK",
		Short: "List the tasks of a stack's services",
		Example: `  shoalctl stack ps shop
  shoalctl stack ps --filter desired-state=running --filter node=worker-2 shop`,
		Args:              exactlyOne("STACK"),
		ValidArgsFunction: g.completeNames(stackNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(rf.filter, taskFilterKeys...)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				svcs, err := stackServices(ctx, c, args[0], rf.stale)
				if err != nil {
					return err
				}
				ids := map[string]bool{}
				for _, s := range svcs {
					ids[s.GetService().GetId()] = true
				}
				resp, err := listTasks(ctx, c, &shoalpb.ListTasksRequest{Stale: rf.stale})
				if err != nil {
					return rpcError(stackSubject(args[0]), err)
				}
				var tasks []*shoalpb.Task
				for _, t := range resp.GetTasks() {
					if ids[t.GetServiceId()] {
						tasks = append(tasks, t)
					}
				}
				return g.printTasks(ctx, c, tasks, f, rf)
			})
		},
	}
	rf.registerList(cmd, taskFilterKeys...)
	return cmd
}

func newStackRmCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm STACK [STACK...]",
		Aliases: []string{"remove", "down"},
		Short:   "Remove stacks: every service labelled with the stack's name",
		Long: `Remove every service of each stack, those that depend on others first, so
that no service is left waiting for one that is gone.`,
		Example: `  shoalctl stack rm shop
  shoalctl stack rm shop blog`,
		Args:              atLeastOne("STACK"),
		ValidArgsFunction: g.completeNames(stackNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				done := []removed{}
				var errs []error
				for _, name := range args {
					r, err := g.removeStack(ctx, c, name)
					done = append(done, r...)
					errs = append(errs, err)
				}
				if g.structured(outputTable) {
					errs = append(errs, g.writeValue(done))
				}
				return errors.Join(errs...)
			})
		},
	}
}

func (g *globals) removeStack(ctx context.Context, c *client, name string) ([]removed, error) {
	svcs, err := stackServices(ctx, c, name, false)
	if err != nil {
		return nil, err
	}
	var done []removed
	var errs []error
	for _, s := range removalOrder(svcs) {
		svcName := s.GetSpec().GetName()
		if !g.structured(outputTable) {
			fmt.Fprintf(g.app.Out, "Removing service %s\n", svcName)
		}
		resp, err := invoke(ctx, c, shoalpb.ControlClient.RemoveService, &shoalpb.RemoveServiceRequest{Service: s.GetId()})
		if err != nil {
			errs = append(errs, rpcError(serviceSubject(svcName), err))
			continue
		}
		done = append(done, newRemoved(svcName, resp.GetIndex()))
	}
	if len(errs) == 0 {
		nets, err := g.removeStackNetworks(ctx, c, name)
		done = append(done, nets...)
		errs = append(errs, err)
		secrets, err := g.removeStackSecrets(ctx, c, name)
		done = append(done, secrets...)
		errs = append(errs, err)
	}
	return done, errors.Join(errs...)
}

// removalOrder puts the services that others depend on last, names
// breaking ties; a dependency cycle (which the manager would not have let
// a stack create) falls back to name order.
func removalOrder(svcs []*shoalpb.ServiceSummary) []*shoalpb.Service {
	byName := map[string]*shoalpb.Service{}
	for _, s := range svcs {
		byName[s.GetService().GetSpec().GetName()] = s.GetService()
	}
	var out []*shoalpb.Service
	placed := map[string]bool{}
	for len(out) < len(byName) {
		progress := false
		for _, name := range slices.Sorted(maps.Keys(byName)) {
			if placed[name] || dependedOnBy(name, byName, placed) {
				continue
			}
			out, placed[name], progress = append(out, byName[name]), true, true
		}
		if !progress {
			for _, name := range slices.Sorted(maps.Keys(byName)) {
				if !placed[name] {
					out, placed[name] = append(out, byName[name]), true
				}
			}
		}
	}
	return out
}

// dependedOnBy reports whether a service not yet placed depends on name.
func dependedOnBy(name string, byName map[string]*shoalpb.Service, placed map[string]bool) bool {
	for other, s := range byName {
		if placed[other] || other == name {
			continue
		}
		for _, d := range s.GetSpec().GetDependsOn() {
			if d.GetService() == name {
				return true
			}
		}
	}
	return false
}
