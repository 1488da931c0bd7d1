package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

var eventFilterKeys = []string{"type", "service", "node"}

func newEventsCommand(g *globals) *cobra.Command {
	var raw []string
	var sinceArg, untilArg string
	cmd := &cobra.Command{
		Use:   "events [--since TIME] [--until TIME] [--filter KEY=VALUE...]",
		Short: "Stream the changes of services, tasks and nodes as they happen",
		Long: `Print one line per change committed from now on, as docker events does:
time, type (service, task, node or network), action, ID, and attributes. It runs until
interrupted (Ctrl-C), or until --timeout if that is given. Filters: type=,
service= (name or ID prefix) and node= (hostname or ID prefix); the same key
twice matches either value.

--since prints the changes committed since a time first, from the managers'
history of recent changes; --until stops at a time (the command ends then).
A time is an RFC 3339 time, Unix seconds, or a duration back from now (10m).
The history is bounded: when --since reaches further back than it holds,
a warning on stderr names the oldest change held.`,
		Example: `  shoalctl events
  shoalctl events --since 10m --until 1m
  shoalctl events --since 2026-01-02T15:04:05Z --filter type=node
  shoalctl events --filter type=task --filter service=shop_web
  shoalctl events --filter node=worker-2 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseFilters(raw, eventFilterKeys...)
			if err != nil {
				return err
			}
			for _, t := range f["type"] {
				if t != "service" && t != "task" && t != "node" && t != "network" {
					return fieldErr("--filter", "type="+t, "want type=service, type=task, type=node or type=network")
				}
			}
			w, err := g.parseWindow(sinceArg, untilArg)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("timeout") {
				g.timeout = 0 // a stream runs until interrupted (or --until)
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				if sinceArg == "" && untilArg == "" {
					return g.streamEvents(ctx, c, f)
				}
				return g.streamWindow(ctx, c, f, w)
			})
		},
	}
	filterFlag(cmd, &raw, eventFilterKeys...)
	cmd.Flags().StringVar(&sinceArg, "since", "", "show the changes since a time first: RFC 3339, Unix seconds, or a duration back from now (10m)")
	cmd.Flags().StringVar(&untilArg, "until", "", "stop at a time (same forms as --since)")
	return cmd
}

// parseWindow reads --since and --until; either may be empty.
func (g *globals) parseWindow(sinceArg, untilArg string) (eventWindow, error) {
	now := g.app.Now()
	w := eventWindow{since: now, sinceGiven: sinceArg != ""}
	var err error
	if sinceArg != "" {
		if w.since, err = parseEventTime("--since", sinceArg, now); err != nil {
			return w, err
		}
	}
	if untilArg != "" {
		if w.until, err = parseEventTime("--until", untilArg, now); err != nil {
			return w, err
		}
	}
	return w, nil
}

// streamEvents prints events until the stream or ctx ends. The manager
// takes one value per key (all must match): keys given once are sent to
// it, and every filter is matched here as well, which covers a key given
// twice (either value).
func (g *globals) streamEvents(ctx context.Context, c *client, f filters) error {
	var server []string
	for _, k := range slices.Sorted(maps.Keys(f)) {
		if len(f[k]) == 1 {
			server = append(server, k+"="+f[k][0])
		}
	}
	err := c.call(ctx, func(ctx context.Context, cc shoalpb.ControlClient) error {
		stream, err := cc.Events(ctx, &shoalpb.EventsRequest{Filters: server})
		if err != nil {
			return err
		}
		// The headers arrive once the manager has subscribed: a failover
		// after that point would lose events, so errors end the command.
		if _, err := stream.Header(); err != nil {
			return err
		}
		for {
			ev, err := stream.Recv()
			if err != nil {
				return streamEnd(err)
			}
			if !f.event(ev) {
				continue
			}
			if err := g.printEvent(ev); err != nil {
				return err
			}
		}
	})
	if ctx.Err() != nil || deadlineReached(ctx, err) {
		return nil // interrupted, or --timeout given and reached: the normal end
	}
	return rpcError("events", err)
}

// deadlineReached tells a stream the manager ended because the deadline
// sent with it passed (its clock may fire a moment before ours, and it may
// then end the stream cleanly) from one it ended for another reason.
func deadlineReached(ctx context.Context, err error) bool {
	d, ok := ctx.Deadline()
	if !ok || time.Until(d) > 100*time.Millisecond {
		return false
	}
	switch status.Code(err) {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return false
}

// streamEnd says why the stream stopped; the server closing it is an
// error too, since events is meant to run until interrupted.
func streamEnd(err error) error {
	if errors.Is(err, io.EOF) {
		return status.Error(codes.Aborted, "the manager ended the event stream (is it shutting down?)")
	}
	return err
}

// event matches the filters the server was not asked for (keys given more
// than once).
func (f filters) event(ev *shoalpb.Event) bool {
	a := ev.GetAttributes()
	return f.match("type", equalFold(ev.GetType())) &&
		f.match("service", func(v string) bool {
			switch ev.GetType() {
			case "service":
				return ev.GetName() == v || strings.HasPrefix(ev.GetId(), v)
			case "task":
				return a["service"] == v
			}
			return false
		}) &&
		f.match("node", func(v string) bool {
			switch ev.GetType() {
			case "node":
				return ev.GetName() == v || strings.HasPrefix(ev.GetId(), v)
			case "task":
				return a["node"] != "" && strings.HasPrefix(a["node"], v)
			}
			return false
		})
}

// printEvent writes one event: a docker-style line, or one compact JSON
// object per line (JSON Lines), or one YAML document.
func (g *globals) printEvent(ev *shoalpb.Event) error {
	switch g.output {
	case outputJSON:
		b, err := jsonOptions.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event as JSON: %w", err)
		}
		var out bytes.Buffer
		if err := json.Compact(&out, b); err != nil {
			return fmt.Errorf("compact event JSON: %w", err)
		}
		out.WriteByte('\n')
		_, err = g.app.Out.Write(out.Bytes())
		return err
	case outputYAML:
		fmt.Fprintln(g.app.Out, "---")
		return g.writeMsg(ev)
	}
	_, err := fmt.Fprintln(g.app.Out, eventLine(ev))
	return err
}

// eventLine is docker's format: TIME TYPE ACTION ID (k=v, ..., name=NAME).
func eventLine(ev *shoalpb.Event) string {
	attrs := maps.Clone(ev.GetAttributes())
	if attrs == nil {
		attrs = map[string]string{}
	}
	if ev.GetName() != "" {
		attrs["name"] = ev.GetName()
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		parts = append(parts, k+"="+attrs[k])
	}
	when := "-"
	if ev.GetTime() != nil {
		when = ev.GetTime().AsTime().UTC().Format("2006-01-02T15:04:05.000000000Z07:00")
	}
	return fmt.Sprintf("%s %s %s %s (%s)", when, ev.GetType(), ev.GetAction(), ev.GetId(), strings.Join(parts, ", "))
}
