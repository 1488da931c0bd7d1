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
	var all, watch bool
	cmd := &cobra.Command{
		Use:   "ps [NODE...]",
		Short: "List the tasks of nodes (default: the node shoalctl runs on)",
		Long: `List the tasks on nodes, grouped by service and slot as service ps does.
Without a NODE it lists the tasks of the node whose hostname is this host's;
--all lists those of every node. With --watch the table is printed again
each time its tasks change, until interrupted (Ctrl-C).`,
		Example: `  shoalctl node ps
  shoalctl node ps worker-1 worker-2
  shoalctl node ps --all --filter desired-state=running
  shoalctl node ps --watch worker-1`,
		ValidArgsFunction: g.completeNames(nodeNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(rf.filter, taskFilterKeys...)
			if err != nil {
				return err
			}
			if all && len(args) > 0 {
				return errors.New("--all lists every node's tasks: give either --all or NODE names")
			}
			if watch && !cmd.Flags().Changed("timeout") {
				g.timeout = 0 // a watch runs until interrupted
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				nodes, err := g.psNodes(ctx, c, args, all, rf.stale)
				if err != nil {
					return err
				}
				if watch {
					return g.watchNodeTasks(ctx, c, nodes, all, f, rf)
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
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print the table again each time its tasks change, until interrupted")
	return cmd
}

// watchNodeTasks is node ps --watch: the tasks bound to the nodes (every
// node's with all), through the same watch as service ps. A task names
// its node by id, so each NODE given is resolved to its id first, by the
// manager's rule (id, unique id prefix or hostname).
func (g *globals) watchNodeTasks(ctx context.Context, c *client, nodes []string, all bool, f filters, rf readFlags) error {
	if all {
		sel := []*shoalpb.WatchSelector{{Kind: "task"}}
		return g.watchTasks(ctx, c, sel, f, func(t *shoalpb.Task) bool { return t.GetNodeId() != "" }, rf)
	}
	ids := make(map[string]bool, len(nodes))
	var sel []*shoalpb.WatchSelector
	for _, ref := range nodes {
		n, err := invoke(ctx, c, shoalpb.ControlClient.GetNode, &shoalpb.GetNodeRequest{Node: ref, Stale: rf.stale})
		if err != nil {
			return rpcError(nodeSubject(ref), err)
		}
		if !ids[n.GetId()] {
			ids[n.GetId()] = true
			sel = append(sel, &shoalpb.WatchSelector{Kind: "task", Node: n.GetId()})
		}
	}
	// The selector matches by id prefix: keep only the nodes' own tasks.
	return g.watchTasks(ctx, c, sel, f, func(t *shoalpb.Task) bool { return ids[t.GetNodeId()] }, rf)
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
