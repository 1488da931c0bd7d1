package ctl

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// newNodePsCommand is docker's node ps: the tasks of nodes, as service ps
// shows them.
func newNodePsCommand(g *globals) *cobra.Command {
	var rf readFlags
	var all bool
	cmd := &cobra.Command{
		Use:   "ps [NODE...]",
		Short: "List the tasks of nodes (default: the node shoalctl runs on)",
		Long: `List the tasks on nodes, grouped by service and slot as service ps does.
Without a NODE it lists the tasks of the node whose hostname is this host's;
--all lists those of every node.`,
		Example: `  shoalctl node ps
  shoalctl node ps worker-1 worker-2
  shoalctl node ps --all --filter desired-state=running`,
		ValidArgsFunction: g.completeNames(nodeNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(rf.filter, taskFilterKeys...)
			if err != nil {
				return err
			}
			if all && len(args) > 0 {
				return errors.New("--all lists every node's tasks: give either --all or NODE names")
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				nodes, err := g.psNodes(ctx, c, args, all, rf.stale)
				if err != nil {
					return err
				}
				var tasks []*shoalpb.Task
				for _, n := range nodes {
					resp, err := listTasks(ctx, c, &shoalpb.ListTasksRequest{Node: n, Stale: rf.stale})
					if err != nil {
						return rpcError(nodeSubject(n), err)
					}
					tasks = append(tasks, resp.GetTasks()...)
				}
				return g.printTasks(ctx, c, tasks, f, rf)
			})
		},
	}
	rf.registerList(cmd, taskFilterKeys...)
	cmd.Flags().BoolVarP(&all, "all", "a", false, "list the tasks of every node")
	return cmd
}

// psNodes are the nodes node ps lists: those named, every node (--all),
// or the one named like this host.
func (g *globals) psNodes(ctx context.Context, c *client, args []string, all, stale bool) ([]string, error) {
	if len(args) > 0 {
		return args, nil
	}
	resp, err := listNodes(ctx, c, stale)
	if err != nil {
		return nil, rpcError("", err)
	}
	hostname := g.app.Hostname
	if hostname == nil {
		hostname = os.Hostname
	}
	self, herr := hostname()
	var out []string
	for _, n := range resp.GetNodes() {
		if all || (herr == nil && n.GetNode().GetHostname() == self) {
			out = append(out, n.GetNode().GetId())
		}
	}
	if len(out) == 0 && !all {
		return nil, fmt.Errorf("no node is named %q like this host: name the nodes (shoalctl node ps NODE...) or give --all", self)
	}
	return out, nil
}
