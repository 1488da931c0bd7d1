package controlapi

import (
	"strings"

	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// Bounds of one watch request.
const (
	maxWatchSelectors = 64
	maxWatchLabels    = 16
	maxWatchValue     = 256
)

// selector is one parsed WatchSelector; all its set fields must match.
type selector struct {
	kind    string
	service string
	node    string
	labels  []labelMatch
}

type labelMatch struct {
	key, value string
	any        bool // key alone: any value
}

// watchFilter passes a change when any selector matches it (no selectors:
// every change).
type watchFilter []selector

func parseSelectors(in []*shoalpb.WatchSelector) (watchFilter, error) {
	if len(in) > maxWatchSelectors {
		return nil, invalidf("selectors: %d given, at most %d", len(in), maxWatchSelectors)
	}
	out := make(watchFilter, 0, len(in))
	for i, s := range in {
		sel := selector{kind: s.GetKind(), service: s.GetService(), node: s.GetNode()}
		switch sel.kind {
		case "", "service", "task", "node", "network":
		default:
			return nil, invalidf("selectors[%d].kind %q: want service, task, node or network (or empty for any)", i, sel.kind)
		}
		for _, v := range []struct{ name, val string }{{"service", sel.service}, {"node", sel.node}} {
			if len(v.val) > maxWatchValue {
				return nil, invalidf("selectors[%d].%s: %d bytes, at most %d", i, v.name, len(v.val), maxWatchValue)
			}
		}
		if len(s.GetLabels()) > maxWatchLabels {
			return nil, invalidf("selectors[%d].labels: %d given, at most %d", i, len(s.GetLabels()), maxWatchLabels)
		}
		for _, l := range s.GetLabels() {
			k, v, eq := strings.Cut(l, "=")
			if k == "" || len(l) > maxWatchValue {
				return nil, invalidf("selectors[%d].labels %q: want key=value or key, at most %d bytes", i, l, maxWatchValue)
			}
			sel.labels = append(sel.labels, labelMatch{key: k, value: v, any: !eq})
		}
		out = append(out, sel)
	}
	return out, nil
}

// match reports whether the filter passes ev; v is the state to find a
// task's service in (for its labels).
func (f watchFilter) match(ev raftstore.Event, v *raftstore.View) bool {
	if len(f) == 0 {
		return true
	}
	for _, s := range f {
		if s.match(ev, v) {
			return true
		}
	}
	return false
}

func (s selector) match(ev raftstore.Event, v *raftstore.View) bool {
	if s.kind != "" && ev.Kind != s.kind {
		return false
	}
	// The service, node and label parts reuse the Events call's rules
	// (eventFilter) for the first two.
	if !(eventFilter{service: s.service, node: s.node}).match(ev) {
		return false
	}
	if len(s.labels) == 0 {
		return true
	}
	var labels map[string]string
	switch {
	case ev.Service != nil:
		labels = ev.Service.Spec.Labels
	case ev.Node != nil:
		labels = ev.Node.Labels
	case ev.Network != nil:
		labels = ev.Network.Spec.Labels
	case ev.Task != nil:
		svc := v.Service(ev.Task.ServiceID)
		if svc == nil {
			return false
		}
		labels = svc.Spec.Labels
	}
	for _, l := range s.labels {
		got, ok := labels[l.key]
		if !ok || (!l.any && got != l.value) {
			return false
		}
	}
	return true
}
