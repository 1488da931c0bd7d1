package ctl

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// filters holds --filter KEY=VALUE flags with docker's semantics: the
// values of one key are alternatives (any may match), different keys must
// all match.
type filters map[string][]string

// filterFlag registers --filter (-f) on cmd; keys lists what it accepts,
// for the help and the error of an unknown key.
func filterFlag(cmd *cobra.Command, raw *[]string, keys ...string) {
	cmd.Flags().StringArrayVarP(raw, "filter", "f", nil,
		fmt.Sprintf("filter by KEY=VALUE, keys: %s (repeatable; the same key twice matches either value)", strings.Join(keys, ", ")))
}

// parseFilters reads --filter values, accepting only the given keys.
func parseFilters(raw []string, keys ...string) (filters, error) {
	f := filters{}
	for _, kv := range raw {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		switch {
		case !ok || v == "":
			return nil, fieldErr("--filter", kv, "want KEY=VALUE with KEY one of %s", strings.Join(keys, ", "))
		case !slices.Contains(keys, k):
			return nil, fieldErr("--filter", kv, "unknown key %q; want one of %s", k, strings.Join(keys, ", "))
		case k == "desired-state":
			if _, err := api.ParseTaskState(v); err != nil {
				return nil, fieldErr("--filter", kv, "%v", err)
			}
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// match reports whether the values of key allow an object: true when the
// key is not filtered on, or when ok accepts one of its values.
func (f filters) match(key string, ok func(v string) bool) bool {
	vals, set := f[key]
	if !set {
		return true
	}
	return slices.ContainsFunc(vals, ok)
}

// idOrPrefix matches an ID by a prefix of it, as docker's id filter does.
func idOrPrefix(id string) func(string) bool {
	return func(v string) bool { return strings.HasPrefix(id, v) }
}

// namePrefix matches a name that starts with the value, as docker's name
// filter does.
func namePrefix(name string) func(string) bool {
	return func(v string) bool { return strings.HasPrefix(name, v) }
}

// hasLabel matches "KEY" (the label is set) or "KEY=VALUE".
func hasLabel(labels map[string]string) func(string) bool {
	return func(v string) bool {
		k, want, withValue := strings.Cut(v, "=")
		got, ok := labels[k]
		return ok && (!withValue || got == want)
	}
}

func equalFold(s string) func(string) bool {
	return func(v string) bool { return strings.EqualFold(s, v) }
}

// Keys each list accepts.
var (
	serviceFilterKeys = []string{"id", "name", "label", "mode"}
	taskFilterKeys    = []string{"id", "name", "node", "desired-state", "label", "service"}
	nodeFilterKeys    = []string{"id", "name", "label", "role", "availability"}
)

func (f filters) service(s *shoalpb.Service) bool {
	spec := s.GetSpec()
	return f.match("id", idOrPrefix(s.GetId())) &&
		f.match("name", namePrefix(spec.GetName())) &&
		f.match("label", hasLabel(spec.GetLabels())) &&
		f.match("mode", equalFold(spec.GetMode()))
}

// task matches a task; hostnames maps node IDs to hostnames so node= can
// name a node either way. label= matches the labels of the task's spec.
func (f filters) task(t *shoalpb.Task, hostnames map[string]string) bool {
	return f.match("id", idOrPrefix(t.GetId())) &&
		f.match("name", namePrefix(taskName(t, true))) &&
		f.match("node", func(v string) bool {
			return t.GetNodeId() != "" && (strings.HasPrefix(t.GetNodeId(), v) || hostnames[t.GetNodeId()] == v)
		}) &&
		f.match("desired-state", equalFold(t.GetDesiredState())) &&
		f.match("label", hasLabel(t.GetSpec().GetLabels())) &&
		f.match("service", func(v string) bool { return t.GetServiceName() == v || strings.HasPrefix(t.GetServiceId(), v) })
}

func (f filters) node(n *shoalpb.Node) bool {
	return f.match("id", idOrPrefix(n.GetId())) &&
		f.match("name", namePrefix(n.GetHostname())) &&
		f.match("label", hasLabel(n.GetLabels())) &&
		f.match("role", equalFold(n.GetRole())) &&
		f.match("availability", equalFold(n.GetAvailability()))
}
