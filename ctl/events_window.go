package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// unixTime is docker's third form of --since and --until: Unix seconds,
// with an optional fraction.
var unixTime = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,9})?$`)

// parseEventTime reads --since or --until (flag names it): an RFC 3339
// time, Unix seconds, or a duration back from now.
func parseEventTime(flag, s string, now time.Time) (time.Time, error) {
	if unixTime.MatchString(s) {
		sec, frac, _ := strings.Cut(s, ".")
		secs, err := strconv.ParseInt(sec, 10, 64)
		if err != nil {
			return time.Time{}, fieldErr(flag, s, "Unix seconds out of range")
		}
		var nanos int64
		if frac != "" {
			nanos, _ = strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		}
		return time.Unix(secs, nanos), nil
	}
	at, err := parseSince(s, now)
	if err != nil {
		return time.Time{}, fieldErr(flag, s, "want a duration back from now (10m, 1h30m), an RFC 3339 time (2026-01-02T15:04:05Z) or Unix seconds (1767366245)")
	}
	return at, nil
}

// eventWindow is the --since/--until of one events command.
type eventWindow struct {
	since, until time.Time
	sinceGiven   bool
}

// streamWindow prints the events between w.since and w.until from the
// managers' watch history and then as they happen, until w.until (if
// given) or ctx ends. A stream that breaks resumes on the next manager
// from the last index seen.
func (g *globals) streamWindow(ctx context.Context, c *client, f filters, w eventWindow) error {
	req := &shoalpb.WatchRequest{History: true, Summaries: true, Selectors: eventSelectors(f),
		SinceTime: timestamppb.New(w.since)}
	if !w.until.IsZero() {
		req.UntilTime = timestamppb.New(w.until)
	}
	first := true
	for {
		err := c.call(ctx, func(ctx context.Context, cc shoalpb.ControlClient) error {
			stream, err := cc.Watch(ctx, req)
			if err != nil {
				return err
			}
			for {
				msg, err := stream.Recv()
				if err != nil {
					return err
				}
				if first && w.sinceGiven {
					g.warnHistory(w.since, msg)
				}
				first = false
				if msg.GetResyncRequired() {
					fmt.Fprintf(g.app.Err, "shoalctl events: changes were lost: %s; going on from now\n", msg.GetResyncReason())
					req.History, req.SinceIndex, req.SinceTime = true, 0, timestamppb.New(g.app.Now())
					return nil
				}
				for _, ch := range msg.GetChanges() {
					if ev := ch.GetEvent(); ev != nil && f.event(ev) {
						if err := g.printEvent(ev); err != nil {
							return err
						}
					}
				}
				req.History, req.SinceIndex = false, msg.GetIndex()
			}
		})
		var un *unavailableError
		switch {
		case ctx.Err() != nil:
			return nil // interrupted: the normal end
		case errors.Is(err, io.EOF):
			return nil // until_time passed: the manager ended the stream
		case status.Code(err) == codes.Unimplemented:
			return fmt.Errorf("events --since/--until: %w; upgrade the managers or leave both out", errNoWatch)
		case err == nil, status.Code(err) == codes.ResourceExhausted, status.Code(err) == codes.OutOfRange, errors.As(err, &un):
			// Resume (or resync) on whichever manager answers next.
		default:
			return rpcError("events", err)
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return nil
		}
	}
}

// warnHistory says on stderr when --since reaches further back than the
// history the manager holds: the changes before its oldest are not shown.
func (g *globals) warnHistory(since time.Time, first *shoalpb.WatchMessage) {
	if first.GetHistoryFloor() == 0 {
		return // every change since the state began is held
	}
	oldest := first.GetHistoryOldestTime()
	if oldest != nil && !since.Before(oldest.AsTime()) {
		return
	}
	held := "none before now"
	if oldest != nil {
		held = "the oldest from " + oldest.AsTime().UTC().Format(time.RFC3339Nano)
	}
	fmt.Fprintf(g.app.Err, "shoalctl events: --since %s reaches before the manager's history: it holds only the changes after index %d (%s); earlier ones are not shown\n",
		since.UTC().Format(time.RFC3339Nano), first.GetHistoryFloor(), held)
}

// eventSelectors asks the manager for the filters given once (all must
// match, so one selector); the rest are matched here.
func eventSelectors(f filters) []*shoalpb.WatchSelector {
	one := func(k string) string {
		if len(f[k]) == 1 {
			return f[k][0]
		}
		return ""
	}
	sel := &shoalpb.WatchSelector{Kind: one("type"), Service: one("service"), Node: one("node")}
	if sel.Kind == "" && sel.Service == "" && sel.Node == "" {
		return nil
	}
	return []*shoalpb.WatchSelector{sel}
}
