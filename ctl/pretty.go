package ctl

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// section writes "Key:  value" lines, skipping empty values, aligned.
type section struct {
	tw *tabwriter.Writer
}

func newSection(w io.Writer) *section {
	return &section{tw: tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)}
}

func (s *section) line(indent int, key, value string) {
	if value == "" {
		return
	}
	fmt.Fprintf(s.tw, "%s%s:\t%s\n", strings.Repeat("  ", indent), key, value)
}

func (s *section) head(indent int, key string) {
	fmt.Fprintf(s.tw, "%s%s:\n", strings.Repeat("  ", indent), key)
}

func (s *section) flush() error { return s.tw.Flush() }

// writeServicesPretty prints each service as docker's `inspect --pretty`
// does: the settings that are set, in readable units.
func writeServicesPretty(w io.Writer, services []*shoalpb.Service) error {
	for i, svc := range services {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := writeServicePretty(w, svc); err != nil {
			return err
		}
	}
	return nil
}

func writeServicePretty(w io.Writer, svc *shoalpb.Service) error {
	spec := specOf(svc)
	s := newSection(w)
	s.line(0, "ID", svc.GetId())
	s.line(0, "Name", spec.Name)
	s.line(0, "Spec version", fmt.Sprint(svc.GetSpecVersion()))
	s.line(0, "Labels", joinMap(spec.Labels))
	s.line(0, "Mode", string(spec.Mode))
	if spec.Mode == api.ModeReplicated {
		s.line(1, "Replicas", fmt.Sprint(spec.Replicas))
	}
	s.line(0, "Created", timeText(svc.GetCreatedAt().AsTime(), svc.GetCreatedAt() != nil))
	s.line(0, "Updated", timeText(svc.GetUpdatedAt().AsTime(), svc.GetUpdatedAt() != nil))
	s.head(0, "Placement")
	s.line(1, "Strategy", string(spec.Placement.Strategy))
	s.line(1, "Constraints", strings.Join(spec.Placement.Constraints, ", "))
	s.line(1, "Preferences", strings.Join(spec.Placement.Preferences, ", "))
	if spec.Placement.MaxReplicasPerNode > 0 {
		s.line(1, "Max replicas per node", fmt.Sprint(spec.Placement.MaxReplicasPerNode))
	}
	rp := spec.RestartPolicy
	s.head(0, "Restart policy")
	s.line(1, "Condition", string(rp.Condition))
	s.line(1, "Delay", rp.Delay.Std().String())
	s.line(1, "Max attempts", fmt.Sprint(rp.MaxAttempts))
	if rp.Window > 0 {
		s.line(1, "Window", rp.Window.Std().String())
	}
	writeRolloutPretty(s, svc, spec)
	s.head(0, "Container")
	s.line(1, "Image", spec.Image)
	if spec.ImageDigest != "" {
		s.line(1, "Image digest", spec.ImageDigest+" (tasks run "+spec.ImageRef()+")")
	}
	s.line(1, "Entrypoint", strings.Join(spec.Command, " "))
	s.line(1, "Args", strings.Join(spec.Args, " "))
	s.line(1, "Env", strings.Join(spec.Env, ", "))
	s.line(1, "Dir", spec.Dir)
	s.line(1, "User", spec.User)
	s.line(1, "Stop grace period", spec.StopGracePeriod.Std().String())
	for _, m := range spec.Mounts {
		s.line(1, "Mount", mountText(m))
	}
	for _, d := range spec.DependsOn {
		s.line(1, "Depends on", fmt.Sprintf("%s (%s)", d.Service, d.Condition))
	}
	writeHealthcheckPretty(s, spec.Healthcheck)
	writeResourcesPretty(s, spec.Resources)
	writeNetworkingPretty(s, svc)
	return s.flush()
}

func writeResourcesPretty(s *section, r api.ResourceRequirements) {
	if r == (api.ResourceRequirements{}) {
		return
	}
	s.head(0, "Resources")
	for _, part := range []struct {
		name string
		res  api.Resources
	}{{"Reservations", r.Reservations}, {"Limits", r.Limits}} {
		if part.res == (api.Resources{}) {
			continue
		}
		s.head(1, part.name)
		if part.res.NanoCPUs != 0 {
			s.line(2, "CPU", api.FormatCPUs(part.res.NanoCPUs))
		}
		if part.res.MemoryBytes != 0 {
			s.line(2, "Memory", api.FormatMemory(part.res.MemoryBytes))
		}
	}
}

func mountText(m api.Mount) string {
	text := fmt.Sprintf("%s %s -> %s", m.Type, m.Source, m.Target)
	if m.ReadOnly {
		text += " (read-only)"
	}
	return text
}

// writeNodesPretty prints nodes in a readable form.
func writeNodesPretty(w io.Writer, nodes []*shoalpb.Node) error {
	for i, n := range nodes {
		if i > 0 {
			fmt.Fprintln(w)
		}
		s := newSection(w)
		s.line(0, "ID", n.GetId())
		s.line(0, "Hostname", n.GetHostname())
		s.line(0, "Address", n.GetAddr())
		s.line(0, "Role", n.GetRole())
		s.line(0, "Status", title(n.GetStatus()))
		s.line(1, "Message", n.GetStatusMessage())
		if d := n.GetRestartDeadline(); d != nil {
			s.line(1, "Restart deadline", timeText(d.AsTime(), true))
		}
		s.line(0, "Availability", title(n.GetAvailability()))
		s.line(0, "Labels", joinMap(n.GetLabels()))
		s.head(0, "Resources")
		s.line(1, "CPUs", api.FormatCPUs(n.GetResources().GetNanoCpus()))
		s.line(1, "Memory", api.FormatMemory(n.GetResources().GetMemoryBytes()))
		s.line(0, "Version", fmt.Sprint(n.GetVersion()))
		s.line(0, "Created", timeText(n.GetCreatedAt().AsTime(), n.GetCreatedAt() != nil))
		s.line(0, "Updated", timeText(n.GetUpdatedAt().AsTime(), n.GetUpdatedAt() != nil))
		if err := s.flush(); err != nil {
			return err
		}
	}
	return nil
}

// writePlan prints the plan of a dry run of service name.
func writePlan(w io.Writer, name string, p *shoalpb.Plan) error {
	fmt.Fprintln(w, "Dry run: nothing was changed.")
	return writeServicePlan(w, name, p)
}

// writeServicePlan prints one service's plan: what it does, the spec of a
// new service or the fields an update changes, and for every task where it
// would run or why it cannot be placed.
func writeServicePlan(w io.Writer, name string, p *shoalpb.Plan) error {
	action := cmp.Or(p.GetAction(), "none")
	fmt.Fprintf(w, "\nService %q: %s%s\n", name, action, planSummary(p))
	if r := p.GetRollout(); r != "" {
		fmt.Fprintf(w, "  %s\n", r)
	}
	if len(p.GetChanges()) > 0 {
		var t *table
		if action == "create" {
			t = newTable(w, "  FIELD", "VALUE")
			for _, c := range p.GetChanges() {
				t.row("  "+c.GetField(), c.GetNew())
			}
		} else {
			t = newTable(w, "  FIELD", "OLD", "NEW")
			for _, c := range p.GetChanges() {
				t.row("  "+c.GetField(), c.GetOld(), c.GetNew())
			}
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(p.GetTasks()) > 0 {
		if len(p.GetChanges()) > 0 {
			fmt.Fprintln(w)
		}
		t := newTable(w, "  SLOT", "NODE", "ACTION", "REASON")
		for _, task := range p.GetTasks() {
			slot := "-"
			if task.GetSlot() > 0 {
				slot = fmt.Sprint(task.GetSlot())
			}
			node := cmp.Or(task.GetHostname(), task.GetNodeId())
			if node == "" {
				node = "(none)"
			}
			t.row("  "+slot, node, task.GetAction(), task.GetReason())
		}
		return t.flush()
	}
	return nil
}

// planSummary counts what a plan does to tasks: ", 3 tasks to start (1
// cannot be placed), 1 to stop".
func planSummary(p *shoalpb.Plan) string {
	var start, unplaced, stop, keep int
	for _, t := range p.GetTasks() {
		switch t.GetAction() {
		case "start":
			start++
			if t.GetReason() != "" {
				unplaced++
			}
		case "stop":
			stop++
		case "keep":
			keep++
		}
	}
	var parts []string
	if start > 0 {
		part := fmt.Sprintf("%d task(s) to start", start)
		if unplaced > 0 {
			part += fmt.Sprintf(" (%d cannot be placed now)", unplaced)
		}
		parts = append(parts, part)
	}
	if stop > 0 {
		parts = append(parts, fmt.Sprintf("%d to stop", stop))
	}
	if keep > 0 {
		parts = append(parts, fmt.Sprintf("%d kept", keep))
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, ", ")
}

func joinMap(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}

// timeText writes an absolute time in UTC, so output does not depend on
// the reader's time zone.
func timeText(t time.Time, ok bool) string {
	if !ok {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
