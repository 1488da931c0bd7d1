package controlapi

import (
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// eventBuffer is how many batches of events a stream may fall behind
// before the state drops it.
const eventBuffer = 256

// Events streams the changes applied to this manager's state. Every manager
// applies the same log, so any of them can serve it.
func (s *Server) Events(req *shoalpb.EventsRequest, stream grpc.ServerStreamingServer[shoalpb.Event]) error {
	err := api.ValidateFilterList(req.GetFilters())
	var f eventFilter
	if err == nil {
		f, err = parseFilters(req.GetFilters())
	}
	if err != nil {
		return toStatus(err)
	}
	events, cancel := s.state().Subscribe(eventBuffer)
	defer cancel()
	// Headers tell the client it is subscribed: every change after them
	// reaches it.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case batch, ok := <-events:
			if !ok {
				return status.Errorf(codes.ResourceExhausted,
					"event stream fell more than %d batches behind and was dropped; reconnect", eventBuffer)
			}
			for _, ev := range batch {
				if !f.match(ev) {
					continue
				}
				if err := stream.Send(toEvent(ev)); err != nil {
					return err
				}
			}
		}
	}
}

// eventFilter holds the filters of one stream; all set ones must match.
type eventFilter struct {
	kind    string // service | task | node
	service string // service name or id
	node    string // node id or hostname
}

func parseFilters(in []string) (eventFilter, error) {
	var f eventFilter
	for _, raw := range in {
		key, val, ok := strings.Cut(raw, "=")
		if !ok || val == "" {
			return f, invalidf("filter %q: want key=value with key type, service or node", raw)
		}
		switch key {
		case "type":
			switch val {
			case "service", "task", "node", "network", "secret", "config":
			default:
				return f, invalidf("filter %q: type is service, task, node, network, secret or config", raw)
			}
			f.kind = val
		case "service":
			f.service = val
		case "node":
			f.node = val
		default:
			return f, invalidf("filter %q: unknown key %q; want type, service or node", raw, key)
		}
	}
	return f, nil
}

func (f eventFilter) match(ev raftstore.Event) bool {
	if f.kind != "" && ev.Kind != f.kind {
		return false
	}
	if f.service != "" {
		switch {
		case ev.Service != nil:
			if !matchRef(f.service, ev.Service.ID, ev.Service.Spec.Name) {
				return false
			}
		case ev.Task != nil:
			if !matchRef(f.service, ev.Task.ServiceID, ev.Task.ServiceName) {
				return false
			}
		default:
			return false
		}
	}
	if f.node != "" {
		switch {
		case ev.Node != nil:
			if !matchRef(f.node, ev.Node.ID, ev.Node.Hostname) {
				return false
			}
		case ev.Task != nil:
			// A task names its node by id only.
			if ev.Task.NodeID == "" || !strings.HasPrefix(ev.Task.NodeID, f.node) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// matchRef matches a filter value against an object's id (or id prefix)
// and its name.
func matchRef(ref, id, name string) bool {
	return ref == name || strings.HasPrefix(id, ref)
}

// toEvent converts a state event. Its time is the one recorded in the
// command, so every manager reports the same time for the same change.
func toEvent(ev raftstore.Event) *shoalpb.Event {
	out := &shoalpb.Event{Type: ev.Kind, Action: ev.Action, Attributes: map[string]string{
		"index": strconv.FormatUint(ev.Index, 10),
	}}
	var at time.Time
	switch {
	case ev.Service != nil:
		out.Id, out.Name, at = ev.Service.ID, ev.Service.Spec.Name, ev.Service.UpdatedAt
		out.Attributes["image"] = ev.Service.Spec.Image
		out.Attributes["spec_version"] = strconv.FormatUint(ev.Service.SpecVersion, 10)
		if ev.Service.Spec.Mode == api.ModeReplicated {
			out.Attributes["replicas"] = strconv.FormatUint(ev.Service.Spec.Replicas, 10)
		}
	case ev.Task != nil:
		t := ev.Task
		out.Id, at = t.ID, t.UpdatedAt
		out.Name = t.ServiceName + "." + strconv.FormatUint(t.Slot, 10)
		if t.Slot == 0 {
			out.Name = t.ServiceName + "." + t.NodeID
		}
		out.Attributes["service"] = t.ServiceName
		out.Attributes["node"] = t.NodeID
		out.Attributes["state"] = t.Status.State.String()
		out.Attributes["desired_state"] = t.DesiredState.String()
		if t.Status.Err != "" {
			out.Attributes["err"] = t.Status.Err
		}
	case ev.Node != nil:
		out.Id, out.Name, at = ev.Node.ID, ev.Node.Hostname, ev.Node.UpdatedAt
		out.Attributes["status"] = string(ev.Node.Status)
		out.Attributes["availability"] = string(ev.Node.Availability)
	case ev.Network != nil:
		out.Id, out.Name = ev.Network.ID, ev.Network.Spec.Name
		out.Attributes["subnet"] = ev.Network.Subnet
	case ev.Secret != nil:
		// Only the name: an event never carries a secret's data.
		out.Id, out.Name, at = ev.Secret.ID, ev.Secret.Spec.Name, ev.Secret.UpdatedAt
	}
	if !at.IsZero() {
		out.Time = timestamppb.New(at)
	}
	return out
}
