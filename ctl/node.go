package ctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func nodeSubject(name string) string { return fmt.Sprintf("node %q", name) }

func newNodeCommand(g *globals) *cobra.Command {
	cmd := groupCommand("node", "List, inspect, drain and remove nodes",
		`  shoalctl node ls
  shoalctl node update --availability drain worker-3
  shoalctl node promote worker-1`)
	cmd.AddCommand(newNodeLsCommand(g), newNodeInspectCommand(g), newNodeUpdateCommand(g), newNodeRmCommand(g),
		newNodePromoteCommand(g), newNodeDemoteCommand(g), newNodePsCommand(g))
	return cmd
}

func newNodeLsCommand(g *globals) *cobra.Command {
	var rf readFlags
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List nodes with their free and total resources",
		Long: `List nodes. CPU and MEMORY show FREE/TOTAL, where free is what the node has
left after the reservations of its active tasks; TASKS counts those tasks.`,
		Example: `  shoalctl node ls
  shoalctl node ls --filter role=worker --filter label=zone=a
  shoalctl node ls -q --filter availability=drain
  shoalctl node ls --stale --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseFilters(rf.filter, nodeFilterKeys...)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				resp, err := listNodes(ctx, c, rf.stale)
				if err != nil {
					return rpcError("", err)
				}
				out := &shoalpb.ListNodesResponse{Nodes: []*shoalpb.NodeSummary{}}
				for _, n := range resp.GetNodes() {
					if f.node(n.GetNode()) {
						out.Nodes = append(out.Nodes, n)
					}
				}
				switch {
				case rf.quiet:
					var ids []string
					for _, n := range sortedNodes(out.GetNodes()) {
						ids = append(ids, n.GetNode().GetId())
					}
					return printIDs(g.app.Out, ids, rf.noTrunc)
				case g.structured(outputTable):
					return writeMsgList(g, out.GetNodes())
				}
				w, err := rf.out(g.app.Out)
				if err != nil {
					return err
				}
				return writeNodeTable(w, out.GetNodes(), rf.noTrunc)
			})
		},
	}
	rf.registerList(cmd, nodeFilterKeys...)
	return cmd
}

func sortedNodes(nodes []*shoalpb.NodeSummary) []*shoalpb.NodeSummary {
	nodes = slices.Clone(nodes)
	slices.SortFunc(nodes, func(a, b *shoalpb.NodeSummary) int {
		return cmp.Or(cmp.Compare(a.GetNode().GetHostname(), b.GetNode().GetHostname()),
			cmp.Compare(a.GetNode().GetId(), b.GetNode().GetId()))
	})
	return nodes
}

func writeNodeTable(w io.Writer, nodes []*shoalpb.NodeSummary, noTrunc bool) error {
	nodes = sortedNodes(nodes)
	t := newTable(w, "ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ROLE", "CPU", "MEMORY", "TASKS")
	for _, s := range nodes {
		n := s.GetNode()
		total, reserved := shoalpb.ToResources(n.GetResources()), shoalpb.ToResources(s.GetReserved())
		free := total.Sub(reserved)
		t.row(shortID(n.GetId(), noTrunc), n.GetHostname(), title(n.GetStatus()), title(n.GetAvailability()),
			title(s.GetManagerStatus()), n.GetRole(),
			api.FormatCPUs(free.NanoCPUs)+"/"+api.FormatCPUs(total.NanoCPUs),
			api.FormatMemory(free.MemoryBytes)+"/"+api.FormatMemory(total.MemoryBytes),
			fmt.Sprint(s.GetTasks()))
	}
	return t.flush()
}

func newNodeInspectCommand(g *globals) *cobra.Command {
	var rf readFlags
	var pretty bool
	cmd := &cobra.Command{
		Use:   "inspect NODE [NODE...]",
		Short: "Show nodes in full (JSON by default, like docker)",
		Long:  "Show nodes in full. NODE is an ID, a unique ID prefix or a hostname.",
		Example: `  shoalctl node inspect worker-1
  shoalctl node inspect --pretty worker-1`,
		Args:              atLeastOne("NODE"),
		ValidArgsFunction: g.completeNames(nodeNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				get := func(name string) (*shoalpb.Node, error) {
					return invoke(ctx, c, shoalpb.ControlClient.GetNode, &shoalpb.GetNodeRequest{Node: name, Stale: rf.stale})
				}
				return inspectEach(g, rf, args, pretty, nodeSubject, get, writeNodesPretty)
			})
		},
	}
	rf.register(cmd, false)
	cmd.Flags().BoolVar(&pretty, "pretty", false, "print a readable summary instead of JSON (same as --output table)")
	return cmd
}

// nodeUpdateFlags are the changes `node update` can make.
type nodeUpdateFlags struct {
	availability string
	labelAdd     []string
	labelRm      []string
}

// request checks the flags and builds the UpdateNode request.
func (f *nodeUpdateFlags) request(node string) (*shoalpb.UpdateNodeRequest, error) {
	req := &shoalpb.UpdateNodeRequest{Node: node, Availability: f.availability, LabelRm: f.labelRm}
	var errs []error
	labels, err := addLabels(nil, "--label-add", f.labelAdd)
	if err != nil {
		errs = append(errs, err)
	}
	req.LabelAdd = labels
	if err := api.ValidateNodeUpdate(f.availability, labels, f.labelRm); err != nil {
		errs = append(errs, asFlag(err, map[string]string{
			"availability": "--availability", "label_add": "--label-add", "label_rm": "--label-rm",
		}))
	}
	if f.availability == "" && len(f.labelAdd) == 0 && len(f.labelRm) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("nothing to update: give --availability, --label-add or --label-rm"))
	}
	return req, errors.Join(errs...)
}

func newNodeUpdateCommand(g *globals) *cobra.Command {
	f := &nodeUpdateFlags{}
	var wf waitFlags
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] NODE",
		Short: "Set a node's availability or labels",
		Long: `Set a node's availability or labels. active: the node takes new tasks;
pause: it keeps its tasks but takes no new ones; drain: its tasks are moved
to other nodes, and shoalctl waits until none is left on it (or --detach).`,
		Example: `  shoalctl node update --availability drain worker-3
  shoalctl node update --availability drain --detach worker-3
  shoalctl node update --label-add zone=a --label-rm old worker-1`,
		Args:              exactlyOne("NODE"),
		ValidArgsFunction: g.completeNames(nodeNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := f.request(args[0])
			if err != nil {
				return err
			}
			waits := req.GetAvailability() == string(api.AvailabilityDrain) && !wf.detach
			g.prepareWait(cmd, waits)
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				n, err := invoke(ctx, c, shoalpb.ControlClient.UpdateNode, req)
				if err != nil {
					return rpcError(nodeSubject(args[0]), err)
				}
				if g.structured(outputTable) {
					err = g.writeMsg(n)
				} else {
					_, err = fmt.Fprintln(g.app.Out, n.GetId())
				}
				if err != nil || !waits {
					return err
				}
				// UpdateNode gives no index; the drain's wait reads
				// the tasks on the node, which a manager behind still
				// shows as running, so it cannot end early.
				return g.waitDrain(ctx, c, n.GetId(), 0)
			})
		},
	}
	cmd.Flags().StringVar(&f.availability, "availability", "", "active, pause or drain")
	cmd.Flags().StringArrayVar(&f.labelAdd, "label-add", nil, "add or replace a node label KEY=VALUE (repeatable)")
	cmd.Flags().StringArrayVar(&f.labelRm, "label-rm", nil, "remove a node label by KEY (repeatable)")
	wf.register(cmd)
	return cmd
}

func newNodeRmCommand(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [--force] NODE [NODE...]",
		Aliases: []string{"remove"},
		Short:   "Remove nodes from the cluster",
		Long: `Remove nodes from the cluster. A node that is still ready is refused unless
--force is given; drain it first so its tasks move elsewhere.`,
		Example: `  shoalctl node rm worker-3
  shoalctl node rm --force worker-3`,
		Args:              atLeastOne("NODE"),
		ValidArgsFunction: g.completeNames(nodeNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				return g.removeEach(args, nodeSubject, func(name string) (uint64, error) {
					resp, err := invoke(ctx, c, shoalpb.ControlClient.RemoveNode, &shoalpb.RemoveNodeRequest{Node: name, Force: force})
					return resp.GetIndex(), err
				})
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove the node even if it is still ready")
	return cmd
}
