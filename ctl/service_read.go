package ctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// readFlags are the flags of commands that only read state.
type readFlags struct {
	stale   bool
	noTrunc bool
	quiet   bool
	filter  []string
	format  string
}

func (r *readFlags) register(cmd *cobra.Command, trunc bool) {
	cmd.Flags().BoolVar(&r.stale, "stale", false,
		"answer from the manager asked, even if it is not the leader (may be behind; works without quorum)")
	if trunc {
		cmd.Flags().BoolVar(&r.noTrunc, "no-trunc", false, "print whole IDs")
	}
	cmd.Flags().StringVar(&r.format, "format", "",
		"print with a Go template: {{.Name}} (the columns, or for inspect the object's fields), {{json .}}, 'table {{.ID}}\t{{.Name}}', or json")
}

// registerList adds the flags of list commands: --quiet and --filter.
func (r *readFlags) registerList(cmd *cobra.Command, filterKeys ...string) {
	r.register(cmd, true)
	cmd.Flags().BoolVarP(&r.quiet, "quiet", "q", false, "print only IDs, one a line")
	filterFlag(cmd, &r.filter, filterKeys...)
}

// printIDs writes IDs one a line, for --quiet.
func printIDs(w io.Writer, ids []string, noTrunc bool) error {
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(shortID(id, noTrunc))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// inspectEach gets each of names and prints those found: as one JSON
// array, or with --pretty (or --output table) as readable summaries. It
// goes on past a name it cannot get, as docker inspect does, and returns
// those failures joined, each naming its object.
func inspectEach[M proto.Message](g *globals, rf readFlags, names []string, pretty bool, subject func(string) string,
	get func(name string) (M, error), writePretty func(io.Writer, []M) error,
) error {
	fw, err := parseFormat(rf.format)
	if err != nil {
		return err
	}
	var found []M
	var errs []error
	for _, name := range names {
		m, err := get(name)
		if err != nil {
			errs = append(errs, rpcError(subject(name), err))
			continue
		}
		found = append(found, m)
	}
	switch {
	case fw != nil:
		err = formatMessages(g.app.Out, fw, found)
	case pretty || !g.structured(outputJSON):
		err = writePretty(g.app.Out, found)
	default:
		err = writeMsgList(g, found)
	}
	return errors.Join(append([]error{err}, errs...)...)
}

func newServiceLsCommand(g *globals) *cobra.Command {
	var rf readFlags
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List services with their running and desired task counts",
		Example: `  shoalctl service ls
  shoalctl service ls --filter name=shop_ --filter label=tier=front
  shoalctl service ls -q
  shoalctl service ls --stale --output yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseFilters(rf.filter, serviceFilterKeys...)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				resp, err := listServicePages(ctx, c, rf.stale)
				if err != nil {
					return rpcError("", err)
				}
				return g.printServices(resp.GetServices(), f, rf)
			})
		},
	}
	rf.registerList(cmd, serviceFilterKeys...)
	return cmd
}

// printServices prints the services that pass f, as --output and --quiet
// say (used by service ls and stack services).
func (g *globals) printServices(all []*shoalpb.ServiceSummary, f filters, rf readFlags) error {
	resp := &shoalpb.ListServicesResponse{Services: []*shoalpb.ServiceSummary{}}
	for _, s := range all {
		if f.service(s.GetService()) {
			resp.Services = append(resp.Services, s)
		}
	}
	switch {
	case rf.quiet:
		var ids []string
		for _, s := range sortedServices(resp.GetServices()) {
			ids = append(ids, s.GetService().GetId())
		}
		return printIDs(g.app.Out, ids, rf.noTrunc)
	case g.structured(outputTable):
		return writeMsgList(g, resp.GetServices())
	}
	w, err := rf.out(g.app.Out)
	if err != nil {
		return err
	}
	return writeServiceTable(w, resp.GetServices(), rf.noTrunc)
}

func sortedServices(services []*shoalpb.ServiceSummary) []*shoalpb.ServiceSummary {
	services = slices.Clone(services)
	slices.SortFunc(services, func(a, b *shoalpb.ServiceSummary) int {
		return cmp.Compare(a.GetService().GetSpec().GetName(), b.GetService().GetSpec().GetName())
	})
	return services
}

func writeServiceTable(w io.Writer, services []*shoalpb.ServiceSummary, noTrunc bool) error {
	services = sortedServices(services)
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
		Args:              atLeastOne("SERVICE"),
		ValidArgsFunction: g.completeNames(serviceNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				get := func(name string) (*shoalpb.Service, error) {
					return invoke(ctx, c, shoalpb.ControlClient.GetService, &shoalpb.GetServiceRequest{Service: name, Stale: rf.stale})
				}
				return inspectEach(g, rf, args, pretty, serviceSubject, get, writeServicesPretty)
			})
		},
	}
	rf.register(cmd, false)
	cmd.Flags().BoolVar(&pretty, "pretty", false, "print a readable summary instead of JSON (same as --output table)")
	return cmd
}

func newServicePsCommand(g *globals) *cobra.Command {
	var rf readFlags
	var watch bool
	cmd := &cobra.Command{
		Use:   "ps SERVICE [SERVICE...]",
		Short: "List the tasks of services, newest first in each slot",
		Long: `List the tasks of services. Each slot (or node, for a global service) shows
its current task first and the tasks it replaced below it, marked \_.
ERROR shows why a task failed, or why the scheduler could not place it.
With --watch the table is printed again each time its tasks change, until
interrupted (Ctrl-C).`,
		Example: `  shoalctl service ps web
  shoalctl service ps --filter desired-state=running --filter node=worker-1 web
  shoalctl service ps --no-trunc --output json web
  shoalctl service ps --watch web`,
		Args:              atLeastOne("SERVICE"),
		ValidArgsFunction: g.completeNames(serviceNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(rf.filter, taskFilterKeys...)
			if err != nil {
				return err
			}
			if watch && !cmd.Flags().Changed("timeout") {
				g.timeout = 0 // a watch runs until interrupted
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				if watch {
					var sel []*shoalpb.WatchSelector
					for _, name := range args {
						sel = append(sel, &shoalpb.WatchSelector{Kind: "task", Service: name})
					}
					return g.watchTasks(ctx, c, sel, f, nil, rf)
				}
				var tasks []*shoalpb.Task
				for _, name := range args {
					resp, err := listTasks(ctx, c, &shoalpb.ListTasksRequest{Service: name, Stale: rf.stale})
					if err != nil {
						return rpcError(serviceSubject(name), err)
					}
					tasks = append(tasks, resp.GetTasks()...)
				}
				return g.printTasks(ctx, c, tasks, f, rf)
			})
		},
	}
	rf.registerList(cmd, taskFilterKeys...)
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print the table again each time its tasks change, until interrupted")
	return cmd
}

// printTasks prints the tasks that pass f (service ps, stack ps).
func (g *globals) printTasks(ctx context.Context, c *client, tasks []*shoalpb.Task, f filters, rf readFlags) error {
	nodes, err := listNodes(ctx, c, rf.stale)
	if err != nil {
		return rpcError("", err)
	}
	hostnames := hostnamesOf(nodes.GetNodes())
	all := &shoalpb.ListTasksResponse{Tasks: []*shoalpb.Task{}}
	for _, t := range tasks {
		if f.task(t, hostnames) {
			all.Tasks = append(all.Tasks, t)
		}
	}
	switch {
	case rf.quiet:
		var ids []string
		for _, t := range sortTasks(all.GetTasks()) {
			ids = append(ids, t.GetId())
		}
		return printIDs(g.app.Out, ids, rf.noTrunc)
	case g.structured(outputTable):
		return writeMsgList(g, all.GetTasks())
	}
	w, err := rf.out(g.app.Out)
	if err != nil {
		return err
	}
	return writeTaskTable(w, all.GetTasks(), hostnames, g.app.Now(), rf.noTrunc)
}

func hostnamesOf(nodes []*shoalpb.NodeSummary) map[string]string {
	hostnames := map[string]string{}
	for _, n := range nodes {
		hostnames[n.GetNode().GetId()] = n.GetNode().GetHostname()
	}
	return hostnames
}

// sortTasks orders tasks by service and slot (or node), newest first in
// each, the order of service ps.
func sortTasks(tasks []*shoalpb.Task) []*shoalpb.Task {
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
	return tasks
}

// writeTaskTable prints tasks grouped by service and slot (or node), the
// newest task of each group first and the ones it replaced under it.
func writeTaskTable(w io.Writer, tasks []*shoalpb.Task, hostnames map[string]string, now time.Time, noTrunc bool) error {
	tasks = sortTasks(tasks)
	heads := []string{"ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"}
	if noTrunc {
		// The whole story of a health check: its newest probe.
		heads = append(heads, "LAST PROBE")
	}
	t := newTable(w, heads...)
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
		cells := []string{shortID(task.GetId(), noTrunc), shown, task.GetSpec().GetImage(), hostnames[task.GetNodeId()],
			title(task.GetDesiredState()), currentState(st, task, now), taskError(st)}
		if noTrunc {
			cells[2] = pinnedImage(task.GetSpec())
			cells = append(cells, quoteOrEmpty(lastProbe(st)))
		}
		t.row(cells...)
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
			return withHealth(title(st.GetState()), st)
		}
	}
	return withHealth(title(st.GetState()), st) + " " + ago(now, when)
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
