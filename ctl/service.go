package ctl

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func newServiceCommand(g *globals) *cobra.Command {
	cmd := groupCommand("service", "Create, change, list and remove services",
		`  shoalctl service create --name web --replicas 3 busybox:1.36 httpd -f -p 8080
  shoalctl service ls
  shoalctl service ps web`)
	cmd.AddCommand(
		newServiceCreateCommand(g), newServiceUpdateCommand(g), newServiceScaleCommand(g),
		newServiceRmCommand(g), newServiceLsCommand(g), newServiceInspectCommand(g), newServicePsCommand(g),
		newServiceLogsCommand(g), newServiceRollbackCommand(g), newServicePromoteCommand(g),
	)
	return cmd
}

// withClient runs fn with a client for this command, within --timeout.
func (g *globals) withClient(cmd *cobra.Command, fn func(ctx context.Context, c *client) error) error {
	c, ctx, done, err := g.dial(cmd.Context())
	if err != nil {
		return err
	}
	defer done()
	return fn(ctx, c)
}

// invoke calls one unary Control method (a method expression such as
// shoalpb.ControlClient.GetService) through the client's failover.
func invoke[Req, Resp any](ctx context.Context, c *client,
	method func(shoalpb.ControlClient, context.Context, Req, ...grpc.CallOption) (Resp, error), req Req,
) (Resp, error) {
	var resp Resp
	err := c.call(ctx, func(ctx context.Context, cc shoalpb.ControlClient) error {
		var err error
		resp, err = method(cc, ctx, req)
		return err
	})
	return resp, err
}

func serviceSubject(name string) string { return fmt.Sprintf("service %q", name) }

func newServiceCreateCommand(g *globals) *cobra.Command {
	f := &serviceFlags{}
	cmd := &cobra.Command{
		Use:   "create --name NAME [OPTIONS] IMAGE [COMMAND [ARG...]]",
		Short: "Create a service",
		Long: `Create a service that runs IMAGE. COMMAND and ARG... replace the image's
cmd (as with docker); --entrypoint replaces its entrypoint. Sizes follow
docker: 64M is 64 MiB; 64Mi means the same. The spec is checked before it
is sent, and again by the manager.`,
		Example: `  shoalctl service create --name web --replicas 3 --reserve-memory 64M busybox:1.36 httpd -f
  shoalctl service create --name agent --mode global --constraint 'node.role!=manager' busybox sleep 1d
  shoalctl service create --name db --mount type=volume,source=data,target=/var/lib/db \
      --placement-pref spread=node.labels.zone --dry-run postgres:16`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := f.createSpec(cmd.Flags().Changed, args)
			if err != nil {
				return err
			}
			g.prepareWait(cmd, f.waits())
			req := &shoalpb.CreateServiceRequest{Spec: shoalpb.FromServiceSpec(spec), DryRun: f.dryRun, NoResolveImage: f.health.noResolve}
			if f.secrets.withRegistryAuth {
				if req.RegistryAuth, err = g.app.requiredRegistryAuth(spec.Image); err != nil {
					return err
				}
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				resp, err := invoke(ctx, c, shoalpb.ControlClient.CreateService, req)
				if err != nil {
					return rpcError(serviceSubject(spec.Name), err)
				}
				if err := g.reportWrite(resp, f.dryRun, spec.Name, resp.GetService().GetId()); err != nil {
					return err
				}
				return g.waitWritten(ctx, c, f.waits(), resp)
			})
		},
	}
	// IMAGE ends the options: what follows belongs to the container.
	cmd.Flags().SetInterspersed(false)
	f.register(cmd.Flags(), false)
	g.registerQuiet(cmd)
	return cmd
}

// reportWrite prints the answer to a create, update or scale of service
// name: the JSON or YAML response, the plan of a dry run, or the line
// given.
func (g *globals) reportWrite(resp *shoalpb.ServiceWriteResponse, dryRun bool, name, line string) error {
	if g.structured(outputTable) {
		return g.writeMsg(resp)
	}
	if dryRun {
		return writePlan(g.app.Out, name, resp.GetPlan())
	}
	_, err := fmt.Fprintln(g.app.Out, line)
	return err
}

// waitWritten waits for the service a write committed to converge.
func (g *globals) waitWritten(ctx context.Context, c *client, waits bool, resp *shoalpb.ServiceWriteResponse) error {
	if !waits {
		return nil
	}
	name, id := resp.GetService().GetSpec().GetName(), resp.GetService().GetId()
	return g.waitServicesAt(ctx, c, []string{id}, map[string]uint64{id: resp.GetService().GetSpecVersion()}, resp.GetIndex(),
		fmt.Sprintf("see shoalctl service ps %s and shoalctl service inspect %s", name, name))
}

func newServiceUpdateCommand(g *globals) *cobra.Command {
	f := &serviceFlags{}
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] SERVICE",
		Short: "Change a service",
		Long: `Read the service's current spec, change what the flags say, and send it
back. The manager refuses the change if someone else changed the service in
between (the spec version no longer matches); run the command again then.`,
		Example: `  shoalctl service update --image busybox:1.37 web
  shoalctl service update --update-parallelism 2 --update-order start-first --update-failure-action rollback --image busybox:1.37 web
  shoalctl service update --force web
  shoalctl service update --rollback web
  shoalctl service update --env-add LOG=debug --env-rm OLD --limit-memory 256M web
  shoalctl service update --constraint-add node.labels.zone==b --dry-run web`,
		Args:              exactlyOne("SERVICE"),
		ValidArgsFunction: g.completeNames(serviceNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !changesSpec(cmd) {
				return errors.New("nothing to update: give at least one option, see shoalctl service update --help")
			}
			g.prepareWait(cmd, f.waits())
			if f.rollout.rollbackNow {
				if err := checkRollbackFlags(cmd); err != nil {
					return err
				}
				return g.withClient(cmd, func(ctx context.Context, c *client) error {
					return g.rollbackService(ctx, c, cmd.Flags().Changed, &f.rollout, args[0], f.waits())
				})
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				return g.updateService(ctx, c, cmd, f, args[0])
			})
		},
	}
	f.register(cmd.Flags(), true)
	g.registerQuiet(cmd)
	return cmd
}

// changesSpec reports whether any flag of the command that changes the
// spec was given.
func changesSpec(cmd *cobra.Command) bool {
	changed := false
	cmd.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
		if f.Changed && f.Name != "dry-run" && f.Name != "detach" {
			changed = true
		}
	})
	return changed
}

func (g *globals) updateService(ctx context.Context, c *client, cmd *cobra.Command, f *serviceFlags, name string) error {
	cur, err := invoke(ctx, c, shoalpb.ControlClient.GetService, &shoalpb.GetServiceRequest{Service: name})
	if err != nil {
		return rpcError(serviceSubject(name), err)
	}
	spec := shoalpb.ToServiceSpec(cur.GetSpec())
	if spec == nil {
		return fmt.Errorf("service %q: the manager returned no spec", name)
	}
	if err := f.updateSpec(cmd.Flags().Changed, spec); err != nil {
		return err
	}
	req := &shoalpb.UpdateServiceRequest{
		Service: cur.GetId(), Spec: shoalpb.FromServiceSpec(spec),
		ExpectedVersion: cur.GetSpecVersion(), DryRun: f.dryRun, NoResolveImage: f.health.noResolve,
	}
	if f.secrets.withRegistryAuth {
		if req.RegistryAuth, err = g.app.requiredRegistryAuth(spec.Image); err != nil {
			return err
		}
	}
	resp, err := invoke(ctx, c, shoalpb.ControlClient.UpdateService, req)
	if status.Code(err) == codes.FailedPrecondition {
		return fmt.Errorf("service %q changed while it was being updated (read at version %d): %s; run the command again",
			name, cur.GetSpecVersion(), statusMessage(err))
	}
	if err != nil {
		return rpcError(serviceSubject(name), err)
	}
	if err := g.reportWrite(resp, f.dryRun, name, name); err != nil {
		return err
	}
	return g.waitWritten(ctx, c, f.waits(), resp)
}

func newServiceScaleCommand(g *globals) *cobra.Command {
	var dryRun bool
	var wf waitFlags
	cmd := &cobra.Command{
		Use:   "scale SERVICE=REPLICAS [SERVICE=REPLICAS...]",
		Short: "Set the number of tasks of replicated services",
		Long: `Set the number of tasks of replicated services, then wait until each runs
its new count (or --detach).`,
		Example: `  shoalctl service scale web=5
  shoalctl service scale web=0 worker=10
  shoalctl service scale --dry-run web=8`,
		Args: atLeastOne("SERVICE=REPLICAS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			reqs, err := parseScaleArgs(args, dryRun)
			if err != nil {
				return err
			}
			waits := !dryRun && !wf.detach
			g.prepareWait(cmd, waits)
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				return g.scale(ctx, c, reqs, waits)
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what the change would do; change nothing")
	wf.register(cmd)
	return cmd
}

func (g *globals) scale(ctx context.Context, c *client, reqs []*shoalpb.ScaleServiceRequest, waits bool) error {
	var resps []*shoalpb.ServiceWriteResponse
	var errs []error
	for _, req := range reqs {
		resp, err := invoke(ctx, c, shoalpb.ControlClient.ScaleService, req)
		if err != nil {
			errs = append(errs, rpcError(serviceSubject(req.GetService()), err))
			continue
		}
		resps = append(resps, resp)
		if !g.structured(outputTable) {
			line := fmt.Sprintf("%s scaled to %d", req.GetService(), req.GetReplicas())
			if err := g.reportWrite(resp, req.GetDryRun(), req.GetService(), line); err != nil {
				return err
			}
		}
	}
	if g.structured(outputTable) {
		if err := writeMsgList(g, resps); err != nil {
			return err
		}
	}
	if waits && len(resps) > 0 {
		var ids, names []string
		var index uint64
		for _, r := range resps {
			ids = append(ids, r.GetService().GetId())
			names = append(names, r.GetService().GetSpec().GetName())
			index = max(index, r.GetIndex())
		}
		errs = append(errs, g.waitServices(ctx, c, ids, index, "see shoalctl service ps "+strings.Join(names, " ")))
	}
	return errors.Join(errs...)
}

// parseScaleArgs reads SERVICE=REPLICAS arguments.
func parseScaleArgs(args []string, dryRun bool) ([]*shoalpb.ScaleServiceRequest, error) {
	var reqs []*shoalpb.ScaleServiceRequest
	var errs []error
	for _, a := range args {
		name, n, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			errs = append(errs, fieldErr("SERVICE=REPLICAS", a, "want a service name, '=' and a number, like web=3"))
			continue
		}
		replicas, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			errs = append(errs, fieldErr("SERVICE=REPLICAS", a, "replicas %q: want a whole number, 0 or more", n))
			continue
		}
		// The cluster's own max-replicas is the manager's to check.
		if err := api.ValidateReplicas("SERVICE=REPLICAS", replicas, api.MaxReplicasCeiling); err != nil {
			errs = append(errs, err)
			continue
		}
		reqs = append(reqs, &shoalpb.ScaleServiceRequest{Service: name, Replicas: replicas, DryRun: dryRun})
	}
	return reqs, errors.Join(errs...)
}

func newServiceRmCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm SERVICE [SERVICE...]",
		Aliases: []string{"remove"},
		Short:   "Remove services and stop their tasks",
		Example: `  shoalctl service rm web
  shoalctl service rm web worker`,
		Args:              atLeastOne("SERVICE"),
		ValidArgsFunction: g.completeNames(serviceNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				return g.removeEach(args, serviceSubject, func(name string) (uint64, error) {
					resp, err := invoke(ctx, c, shoalpb.ControlClient.RemoveService, &shoalpb.RemoveServiceRequest{Service: name})
					return resp.GetIndex(), err
				})
			})
		},
	}
}

// removed is the JSON of one removal, for `service rm` and `node rm`
// (see docs/cli-json.md). The index is a string, as protojson writes
// 64-bit numbers.
type removed struct {
	Name  string `json:"name"`
	Index string `json:"index"`
}

func newRemoved(name string, index uint64) removed {
	return removed{Name: name, Index: strconv.FormatUint(index, 10)}
}

// removeEach removes each of names with rm and prints the names removed,
// or with --output json/yaml the list of removals. It goes on past a name
// it cannot remove and returns those failures joined, each naming its
// object.
func (g *globals) removeEach(names []string, subject func(string) string, rm func(name string) (index uint64, err error)) error {
	done := []removed{}
	var errs []error
	for _, name := range names {
		index, err := rm(name)
		if err != nil {
			errs = append(errs, rpcError(subject(name), err))
			continue
		}
		done = append(done, newRemoved(name, index))
		if !g.structured(outputTable) {
			fmt.Fprintln(g.app.Out, name)
		}
	}
	if g.structured(outputTable) {
		if err := g.writeValue(done); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// specOf returns the spec of a service message as a domain value (never nil).
func specOf(s *shoalpb.Service) *api.ServiceSpec {
	if spec := shoalpb.ToServiceSpec(s.GetSpec()); spec != nil {
		return spec
	}
	return &api.ServiceSpec{}
}
