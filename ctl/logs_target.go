package ctl

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// logService resolves the argument of service logs: a service, or else a
// task by id or unique id prefix (its service is then looked up). It
// returns the service and what to ask ServiceLogs for.
func logService(ctx context.Context, c *client, ref string) (*shoalpb.Service, string, error) {
	svc, err := invoke(ctx, c, shoalpb.ControlClient.GetService, &shoalpb.GetServiceRequest{Service: ref})
	if err == nil {
		return svc, svc.GetId(), nil
	}
	if status.Code(err) != codes.NotFound {
		return nil, "", rpcError(serviceSubject(ref), err)
	}
	tasks, terr := listTasks(ctx, c, &shoalpb.ListTasksRequest{})
	if terr != nil {
		return nil, "", rpcError(serviceSubject(ref), err)
	}
	var found []*shoalpb.Task
	for _, t := range tasks.GetTasks() {
		if t.GetId() == ref {
			found = []*shoalpb.Task{t}
			break
		}
		if strings.HasPrefix(t.GetId(), ref) {
			found = append(found, t)
		}
	}
	if len(found) != 1 {
		return nil, "", rpcError(serviceSubject(ref), err)
	}
	svc, err = invoke(ctx, c, shoalpb.ControlClient.GetService, &shoalpb.GetServiceRequest{Service: found[0].GetServiceId()})
	if err != nil {
		return nil, "", rpcError(fmt.Sprintf("service of task %q", ref), err)
	}
	return svc, found[0].GetId(), nil
}

// parseSince reads --since as docker does: a duration back from now, or
// an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fieldErr("--since", s, "a duration back from now must not be negative")
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fieldErr("--since", s, "want a duration (10m, 1h30m) or an RFC 3339 time (2026-01-02T15:04:05Z)")
}
