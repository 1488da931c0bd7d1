package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func newServiceRollbackCommand(g *globals) *cobra.Command {
	var rf rolloutFlags
	var wf waitFlags
	cmd := &cobra.Command{
		Use:   "rollback [OPTIONS] SERVICE",
		Short: "Roll a service back to its previous spec",
		Long: `Make the service's previous spec its spec again and roll the tasks back to
it, as an update does, with the service's rollback config (the --rollback-*
flags replace it for this rollback). Tasks that never left the previous spec
are kept; canaries of an update waiting for promotion are dropped. Waits
until the rollback completes (or --detach).`,
		Example: `  shoalctl service rollback web
  shoalctl service rollback --rollback-parallelism 0 web`,
		Args:              exactlyOne("SERVICE"),
		ValidArgsFunction: g.completeNames(serviceNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.prepareWait(cmd, !wf.detach)
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				return g.rollbackService(ctx, c, cmd.Flags().Changed, &rf, args[0], !wf.detach)
			})
		},
	}
	rf.rollback.register(cmd.Flags(), "rollback", "the rollback")
	wf.register(cmd)
	return cmd
}

// rollbackService sends a rollback of service name, with a rollback config
// built from the current one and the --rollback-* flags given.
func (g *globals) rollbackService(ctx context.Context, c *client, changed func(string) bool, rf *rolloutFlags, name string, waits bool) error {
	cur, err := invoke(ctx, c, shoalpb.ControlClient.GetService, &shoalpb.GetServiceRequest{Service: name})
	if err != nil {
		return rpcError(serviceSubject(name), err)
	}
	req := &shoalpb.RollbackServiceRequest{Service: cur.GetId(), ExpectedVersion: cur.GetSpecVersion()}
	cfg := specOf(cur).RollbackConfig
	before := cfg
	rf.rollback.apply(changed, &cfg)
	if cfg != before {
		if err := api.PrepareRollbackConfig("rollback_config", &cfg); err != nil {
			return err
		}
		req.RollbackConfig = shoalpb.FromUpdateConfig(cfg)
	}
	resp, err := invoke(ctx, c, shoalpb.ControlClient.RollbackService, req)
	if err != nil {
		return rpcError(serviceSubject(name), err)
	}
	if err := g.reportWrite(resp, false, name, name+" rolling back to its previous spec"); err != nil {
		return err
	}
	return g.waitWritten(ctx, c, waits, resp)
}

func newServicePromoteCommand(g *globals) *cobra.Command {
	var wf waitFlags
	cmd := &cobra.Command{
		Use:   "promote [OPTIONS] SERVICE",
		Short: "Let an update waiting on its canaries replace the other tasks",
		Long: `An update with --update-canary N starts N tasks of the new spec beside the
old ones and, once they are up for the monitor window, waits. promote lets
it go on with the rest of the tasks, with the update settings; shoalctl
service rollback drops the canaries instead. Waits until the update
completes (or --detach).`,
		Example:           `  shoalctl service promote web`,
		Args:              exactlyOne("SERVICE"),
		ValidArgsFunction: g.completeNames(serviceNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.prepareWait(cmd, !wf.detach)
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				resp, err := invoke(ctx, c, shoalpb.ControlClient.PromoteService, &shoalpb.PromoteServiceRequest{Service: args[0]})
				if err != nil {
					return rpcError(serviceSubject(args[0]), err)
				}
				if err := g.reportWrite(resp, false, args[0], args[0]+" promoted"); err != nil {
					return err
				}
				return g.waitWritten(ctx, c, !wf.detach, resp)
			})
		},
	}
	wf.register(cmd)
	return cmd
}

// checkRollbackFlags refuses `service update --rollback` with flags that
// change the spec: the rollback restores the previous spec, only the
// --rollback-* settings (and --detach) go with it.
func checkRollbackFlags(cmd *cobra.Command) error {
	var bad []string
	cmd.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
		switch {
		case !f.Changed, f.Name == "rollback" || f.Name == "detach":
		case strings.HasPrefix(f.Name, "rollback-"):
		default:
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		return errors.New(fmt.Sprint("--rollback restores the previous spec and cannot be combined with ", bad,
			"; roll back first, then update"))
	}
	return nil
}
