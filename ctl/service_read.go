package ctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// readFlags are the flags of commands that only read state.
type readFlags struct {
	stale   bool
	noTrunc bool
}

func (r *readFlags) register(cmd *cobra.Command, trunc bool) {
	cmd.Flags().BoolVar(&r.stale, "stale", false,
		"answer from the manager asked, even if it is not the leader (may be behind; works without quorum)")
	if trunc {
		cmd.Flags().BoolVar(&r.noTrunc, "no-trunc", false, "print whole IDs")
	}
}

func newServiceLsCommand(g *globals) *cobra.Command {
	var rf readFlags
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List services with their running and desired task counts",
		Example: `  shoalctl service ls
  shoalctl service ls --stale --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				resp, err := invoke(ctx, c, shoalpb.ControlClient.ListServices, &shoalpb.ListServicesRequest{Stale: rf.stale})
				if err != nil {
					return rpcError("", err)
				}
				if g.json(outputTable) {
					return writeJSON(g.app.Out, resp)
				}
				return writeServiceTable(g.app.Out, resp.GetServices(), rf.noTrunc)
			})
		},
	}
	rf.register(cmd, true)
	return cmd
}

func writeServiceTable(w io.Writer, services []*shoalpb.ServiceSummary, noTrunc bool) error {
	services = slices.Clone(services)
	slices.SortFunc(services, func(a, b *shoalpb.ServiceSummary) int {
		return cmp.Compare(a.GetService().GetSpec().GetName(), b.GetService().GetSpec().GetName())
	})
	t := newTable(w, "ID", "NAME", "MODE", "REPLICAS", "IMAGE")
	for _, s := range services {
		spec := s.GetService().GetSpec()
		replicas := fmt.Sprintf("%d/%d", s.GetRunning(), s.GetDesired())
		if m := spec.GetPlacement().GetMaxReplicasPerNode(); m > 0 {
			replicas += fmt.Sprintf(" (max %d per node)", m)
		}
		t.row(shortID(s.GetService().GetId(), noTrunc), spec.GetName(), spec.GetMode(), replicas, spec.GetImage())
	}
	return t.flush()
}

func newServiceInspectCommand(g *globals) *cobra.Command {
	var rf readFlags
	var pretty bool
	cmd := &cobra.Command{
		Use:   "inspect SERVICE [SERVICE...]",
		Short: "Show services in full (JSON by default, like docker)",
		Example: `  shoalctl service inspect web
  shoalctl service inspect --pretty web worker`,
		Args: atLeastOne("SERVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				var found []*shoalpb.Service
				var errs []error
				for _, name := range args {
					s, err := invoke(ctx, c, shoalpb.ControlClient.GetService, &shoalpb.GetServiceRequest{Service: name, Stale: rf.stale})
					if err != nil {
						errs = append(errs, rpcError(serviceSubject(name), err))
						continue
					}
					found = append(found, s)
				}
				var err error
				if pretty || !g.json(outputJSON) {
					err = writeServicesPretty(g.app.Out, found)
				} else {
					err = writeJSONList(g.app.Out, found)
				}
				return errors.Join(append([]error{err}, errs...)...)
			})
		},
	}
	rf.register(cmd, false)
	cmd.Flags().BoolVar(&pretty, "pretty", false, "print a readable summary instead of JSON (same as --output table)")
	return cmd
}

func newServicePsCommand(g *globals) *cobra.Command {
	var rf readFlags
	cmd := &cobra.Command{
		Use:   "ps SERVICE [SERVICE...]",
		Short: "List the tasks of services, newest first in each slot",
		Long: `List the tasks of services. Each slot (or node, for a global service) shows
its current task first and the tasks it replaced below it, marked \_.
ERROR shows why a task failed, or why the scheduler could not place it.`,
		Example: `  shoalctl service ps web
  shoalctl service ps --no-trunc --output json web`,
		Args: atLeastOne("SERVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				return g.servicePs(ctx, c, args, rf)
			})
		},
	}
	rf.register(cmd, true)
	return cmd
}

func (g *globals) servicePs(ctx context.Context, c *client, names []string, rf readFlags) error {
	all := &shoalpb.ListTasksResponse{}
	for _, name := range names {
		resp, err := invoke(ctx, c, shoalpb.ControlClient.ListTasks, &shoalpb.ListTasksRequest{Service: name, Stale: rf.stale})
		if err != nil {
			return rpcError(serviceSubject(name), err)
		}
		all.Tasks = append(all.Tasks, resp.GetTasks()...)
	}
	if g.json(outputTable) {
		return writeJSON(g.app.Out, all)
	}
	nodes, err := invoke(ctx, c, shoalpb.ControlClient.ListNodes, &shoalpb.ListNodesRequest{Stale: rf.stale})
	if err != nil {
		return rpcError("", err)
	}
	hostnames := map[string]string{}
	for _, n := range nodes.GetNodes() {
		hostnames[n.GetNode().GetId()] = n.GetNode().GetHostname()
	}
	return writeTaskTable(g.app.Out, all.GetTasks(), hostnames, g.app.Now(), rf.noTrunc)
}

// writeTaskTable prints tasks grouped by service and slot (or node), the
// newest task of each group first and the ones it replaced under it.
func writeTaskTable(w io.Writer, tasks []*shoalpb.Task, hostnames map[string]string, now time.Time, noTrunc bool) error {
	tasks = slices.Clone(tasks)
	slices.SortStableFunc(tasks, func(a, b *shoalpb.Task) int {
		return cmp.Or(
			cmp.Compare(a.GetServiceName(), b.GetServiceName()),
			cmp.Compare(a.GetSlot(), b.GetSlot()),
			cmp.Compare(slotKey(a), slotKey(b)),
			b.GetCreatedAt().AsTime().Compare(a.GetCreatedAt().AsTime()),
			cmp.Compare(a.GetId(), b.GetId()),
		)
	})
	t := newTable(w, "ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR")
	prev := ""
	for _, task := range tasks {
		name := taskName(task, noTrunc)
		shown := name
		if group := task.GetServiceName() + "\x00" + slotKey(task); group == prev {
			shown = ` \_ ` + name
		} else {
			prev = group
		}
		st := task.GetStatus()
		t.row(shortID(task.GetId(), noTrunc), shown, task.GetSpec().GetImage(), hostnames[task.GetNodeId()],
			title(task.GetDesiredState()), currentState(st, task, now), taskError(st))
	}
	return t.flush()
}

// slotKey groups the tasks that replace each other: the slot of a
// replicated task, the node of a global one.
func slotKey(t *shoalpb.Task) string {
	if t.GetSlot() > 0 {
		return strconv.FormatUint(t.GetSlot(), 10)
	}
	return t.GetNodeId()
}

// taskName is SERVICE.SLOT, or SERVICE.NODE for a global task, as docker
// names them.
func taskName(t *shoalpb.Task, noTrunc bool) string {
	if t.GetSlot() > 0 {
		return fmt.Sprintf("%s.%d", t.GetServiceName(), t.GetSlot())
	}
	return t.GetServiceName() + "." + shortID(t.GetNodeId(), noTrunc)
}

func currentState(st *shoalpb.TaskStatus, t *shoalpb.Task, now time.Time) string {
	when := st.GetTimestamp().AsTime()
	if st.GetTimestamp() == nil {
		when = t.GetUpdatedAt().AsTime()
		if t.GetUpdatedAt() == nil {
			return title(st.GetState())
		}
	}
	return title(st.GetState()) + " " + ago(now, when)
}

// taskError is the task's error, or for a task still waiting for a node
// the scheduler's reason; quoted as docker does.
func taskError(st *shoalpb.TaskStatus) string {
	msg := st.GetErr()
	if msg == "" && st.GetPendingReason() != "" {
		if s, err := api.ParseTaskState(st.GetState()); err == nil && s <= api.TaskPending {
			msg = st.GetPendingReason()
		}
	}
	if msg == "" {
		return ""
	}
	return strconv.Quote(msg)
}
