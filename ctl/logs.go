package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// logsFlags are the options of service logs.
type logsFlags struct {
	follow     bool
	tail       string
	timestamps bool
	noTaskIDs  bool
	noTrunc    bool
	raw        bool
	since      string
}

func newServiceLogsCommand(g *globals) *cobra.Command {
	f := &logsFlags{}
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] SERVICE|TASK",
		Short: "Print the logs of a service's tasks",
		Long: `Print what the service's tasks wrote to stdout and stderr, fetched by the
manager from the agents of the nodes the tasks ran on. Each line starts with
the task (SERVICE.SLOT.TASK@NODE, as docker does); stderr lines go to
stderr. A node that cannot be reached is reported on stderr, the other
nodes' lines are printed, and the command then exits 1. With --follow the
command runs until interrupted (or until --timeout if that is given) and
takes in tasks that start meanwhile.`,
		Example: `  shoalctl service logs web
  shoalctl service logs --tail 20 --timestamps web
  shoalctl service logs -f --tail 0 web
  shoalctl service logs --raw web | grep ERROR
  shoalctl service logs --since 10m web
  shoalctl service logs 4fqvq2y5s3kk   # one task, by id or id prefix`,
		Args:              exactlyOne("SERVICE|TASK"),
		ValidArgsFunction: g.completeNames(serviceNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			tail, err := parseTail(f.tail)
			if err != nil {
				return err
			}
			if g.structured(outputTable) {
				return fieldErr("--output", g.output, "service logs prints lines as they come; use --raw for the bare lines")
			}
			if f.follow && !cmd.Flags().Changed("timeout") {
				g.timeout = 0 // a followed stream runs until interrupted
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				return g.serviceLogs(ctx, c, args[0], tail, f)
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.follow, "follow", "f", false, "keep printing new lines until interrupted")
	fl.StringVarP(&f.tail, "tail", "n", "all", "print only the last N lines of each task (all: every line)")
	fl.BoolVarP(&f.timestamps, "timestamps", "t", false, "print the time of each line")
	fl.BoolVar(&f.noTaskIDs, "no-task-ids", false, "leave task IDs out of the line prefix")
	fl.BoolVar(&f.noTrunc, "no-trunc", false, "print whole IDs in the line prefix")
	fl.BoolVar(&f.raw, "raw", false, "print the bare lines, without the task prefix")
	fl.StringVar(&f.since, "since", "", "only lines written since a time: a duration back from now (10m, 1h30m) or an RFC 3339 time (2026-01-02T15:04:05Z)")
	return cmd
}

// parseTail reads --tail: "all" or a number of lines (-1 is all).
func parseTail(s string) (int64, error) {
	if s == "all" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < -1 {
		return 0, fieldErr("--tail", s, "want a number of lines or all")
	}
	return n, nil
}

// serviceLogs prints the service's log lines as they arrive.
func (g *globals) serviceLogs(ctx context.Context, c *client, ref string, tail int64, f *logsFlags) error {
	p, err := newLogPrefixer(ctx, c, ref, f)
	if err != nil {
		return err
	}
	req := &shoalpb.ServiceLogsRequest{Service: p.target, Follow: f.follow, Tail: tail}
	if f.since != "" {
		at, err := parseSince(f.since, g.app.Now())
		if err != nil {
			return err
		}
		req.Since = timestamppb.New(at)
	}
	var missing []string
	err = c.call(ctx, func(ctx context.Context, cc shoalpb.ControlClient) error {
		stream, err := cc.ServiceLogs(ctx, req)
		if err != nil {
			return err
		}
		for printed := false; ; printed = true {
			l, err := stream.Recv()
			switch {
			case errors.Is(err, io.EOF):
				return nil
			case err != nil && printed && status.Code(err) == codes.Unavailable:
				// Another manager would print the same lines again.
				return status.Errorf(codes.Aborted, "the log stream broke: %s", status.Convert(err).Message())
			case err != nil:
				return err
			}
			if l.GetStream() == shoalpb.LogStreamError {
				missing = append(missing, string(l.GetLine()))
				fmt.Fprintf(g.app.Err, "logs missing: %s\n", l.GetLine())
				continue
			}
			if err := g.printLogLine(p, l, f); err != nil {
				return err
			}
		}
	})
	switch {
	case f.follow && (ctx.Err() != nil || deadlineReached(ctx, err)):
		err = nil // interrupted, or --timeout given and reached: the normal end
	case err != nil:
		return rpcError(serviceSubject(ref), err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("the logs of service %q are incomplete: %d part(s) could not be fetched (see \"logs missing\" above)", ref, len(missing))
	}
	return nil
}

// printLogLine writes one line, docker style: PREFIX | [TIME ]TEXT.
func (g *globals) printLogLine(p *logPrefixer, l *shoalpb.LogLine, f *logsFlags) error {
	w := g.app.Out
	if l.GetStream() == shoalpb.LogStreamStderr {
		w = g.app.Err
	}
	var b strings.Builder
	if !f.raw {
		b.WriteString(p.prefix(l))
		b.WriteString(" | ")
	}
	if f.timestamps {
		b.WriteString(l.GetTime().AsTime().UTC().Format("2006-01-02T15:04:05.000000000Z07:00"))
		b.WriteByte(' ')
	}
	b.Write(l.GetLine())
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// logPrefixer names the task of a line: SERVICE.SLOT.TASK@HOSTNAME, padded
// to the longest name of the service's tasks so the lines stay aligned.
type logPrefixer struct {
	serviceID, service string
	// target is what ServiceLogs is asked for: the service's id, or the
	// task's when one task's logs are asked for.
	target    string
	hostnames map[string]string
	noTaskIDs bool
	noTrunc   bool
	width     int
}

func newLogPrefixer(ctx context.Context, c *client, ref string, f *logsFlags) (*logPrefixer, error) {
	svc, target, err := logService(ctx, c, ref)
	if err != nil {
		return nil, err
	}
	p := &logPrefixer{
		serviceID: svc.GetId(), service: svc.GetSpec().GetName(), target: target, hostnames: map[string]string{},
		noTaskIDs: f.noTaskIDs, noTrunc: f.noTrunc,
	}
	if f.raw {
		return p, nil
	}
	nodes, err := listNodes(ctx, c, false)
	if err != nil {
		return nil, rpcError("nodes", err)
	}
	for _, n := range nodes.GetNodes() {
		p.hostnames[n.GetNode().GetId()] = n.GetNode().GetHostname()
	}
	tasks, err := listTasks(ctx, c, &shoalpb.ListTasksRequest{Service: p.serviceID})
	if err != nil {
		return nil, rpcError(serviceSubject(ref), err)
	}
	for _, t := range tasks.GetTasks() {
		if t.GetNodeId() != "" {
			p.width = max(p.width, len(p.name(&shoalpb.LogLine{TaskId: t.GetId(), NodeId: t.GetNodeId(), Slot: t.GetSlot()})))
		}
	}
	return p, nil
}

func (p *logPrefixer) name(l *shoalpb.LogLine) string {
	task := &shoalpb.Task{ServiceName: p.service, Slot: l.GetSlot(), NodeId: l.GetNodeId()}
	name := taskName(task, p.noTrunc)
	if !p.noTaskIDs {
		name += "." + shortID(l.GetTaskId(), p.noTrunc)
	}
	host := p.hostnames[l.GetNodeId()]
	if host == "" {
		host = shortID(l.GetNodeId(), p.noTrunc)
	}
	return name + "@" + host
}

func (p *logPrefixer) prefix(l *shoalpb.LogLine) string {
	name := p.name(l)
	return name + strings.Repeat(" ", max(0, p.width-len(name)))
}
