package ctl

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// roleChange is one node promote or demote.
type roleChange struct {
	use, short, long, example string
	// call sends the request for one node.
	call func(context.Context, *client, string) (*shoalpb.NodeRoleResponse, error)
	// done and already are what is printed for a node that changed or
	// had the role already (docker's wording).
	done, already string
}

func newNodePromoteCommand(g *globals) *cobra.Command {
	return g.roleCommand(roleChange{
		use:   "promote NODE [NODE...]",
		short: "Make nodes managers",
		long: `Make nodes managers: the standby manager on each node's host (started with
shoal-manager --standby, its agent with --manager-data-dir) becomes a Raft
voter. A node whose host runs no manager is refused. The node keeps its tasks.`,
		example: `  shoalctl node promote worker-1
  shoalctl node promote worker-1 worker-2`,
		call: func(ctx context.Context, c *client, node string) (*shoalpb.NodeRoleResponse, error) {
			return invoke(ctx, c, shoalpb.ControlClient.PromoteNode, &shoalpb.PromoteNodeRequest{Node: node})
		},
		done: "Node %s promoted to a manager in the cluster.", already: "Node %s is already a manager.",
	})
}

func newNodeDemoteCommand(g *globals) *cobra.Command {
	return g.roleCommand(roleChange{
		use:   "demote NODE [NODE...]",
		short: "Make manager nodes workers",
		long: `Make manager nodes workers: each node's manager leaves the Raft voters (a
leader hands leadership over first) and stays a standby that can be promoted
again. The node keeps its tasks. The last manager, or one whose loss would
leave fewer reachable managers than a quorum, is refused.`,
		example: `  shoalctl node demote manager-3`,
		call: func(ctx context.Context, c *client, node string) (*shoalpb.NodeRoleResponse, error) {
			return invoke(ctx, c, shoalpb.ControlClient.DemoteNode, &shoalpb.DemoteNodeRequest{Node: node})
		},
		done: "Manager %s demoted in the cluster.", already: "Node %s is already a worker.",
	})
}

func (g *globals) roleCommand(rc roleChange) *cobra.Command {
	return &cobra.Command{
		Use: rc.use, Short: rc.short, Long: rc.long, Example: rc.example,
		Args:              atLeastOne("NODE"),
		ValidArgsFunction: g.completeNames(nodeNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				var errs []error
				var out []*shoalpb.NodeRoleResponse
				for _, name := range args {
					resp, err := rc.call(ctx, c, name)
					if err != nil {
						errs = append(errs, rpcError(nodeSubject(name), err))
						continue
					}
					out = append(out, resp)
					if g.structured(outputTable) {
						continue
					}
					format := rc.done
					if !resp.GetChanged() {
						format = rc.already
					}
					fmt.Fprintf(g.app.Out, format+"\n", name)
				}
				if g.structured(outputTable) {
					if err := writeMsgList(g, out); err != nil {
						return err
					}
				}
				return errors.Join(errs...)
			})
		},
	}
}
