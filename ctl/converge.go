package ctl

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// maxSlotFailures is how many tasks of one slot may fail, after shoalctl
// started waiting, before it reports that the service will not converge.
// The orchestrator keeps replacing them (with growing delays) under a
// restart policy without max_attempts; waiting out --timeout would only
// hide the error.
const maxSlotFailures = 3

// view is what one poll shows of one thing being waited for: a service
// converging, or a node draining.
type view struct {
	name    string
	desired int // slots (or nodes) that must be done
	done    int
	slots   []slotView
	// summary replaces "done/desired converged" when set.
	summary   string
	converged bool
	// failure says why it will never converge; set, the wait ends.
	failure string
	// settle is how long it must stay converged, with the same tasks
	// (sig), before the wait takes it as done: a task that crashes soon
	// after it started must not pass for a converged service.
	settle   time.Duration
	sig      string
	settling bool // converged, but not for settle yet
}

// defaultSettle is how long a service must stay converged when its
// update_config has no monitor period, as docker's "verify" step waits.
const defaultSettle = 5 * time.Second

// slotView is one slot of a replicated service, one node of a global
// service, or one task on a draining node.
type slotView struct {
	key  string // web.1, web@worker-1
	text string // running on worker-1, pending: no suitable node (...)
	done bool
	task string // ID of the task shown
}

func (v view) status() string {
	switch {
	case v.failure != "":
		return "failed: " + v.failure
	case v.settling:
		return fmt.Sprintf("%d/%d running, verifying they stay up for %s", v.done, v.desired, v.settle)
	case v.summary != "":
		return v.summary
	case v.converged:
		return fmt.Sprintf("converged (%d/%d)", v.done, v.desired)
	}
	return fmt.Sprintf("%d/%d converged", v.done, v.desired)
}

// cluster is one poll's answer: the services, all tasks and the nodes.
type cluster struct {
	services map[string]*shoalpb.Service // by ID
	tasks    []*shoalpb.Task
	nodes    []*shoalpb.NodeSummary
	hosts    map[string]string // node ID -> hostname
}

// viewService says how far svc is from converged: for each slot (each
// eligible node of a global service) the newest task meant to run must be
// running the current spec, or have completed if the restart policy lets
// it stay so. old holds the IDs of the tasks that had already ended when
// the wait began: their failures are history, not this change's.
func viewService(svc *shoalpb.Service, cl *cluster, old map[string]bool) view {
	spec := svc.GetSpec()
	v := view{name: spec.GetName(), settle: defaultSettle}
	if m := spec.GetUpdateConfig().GetMonitor(); m != nil && m.AsDuration() > 0 {
		v.settle = m.AsDuration()
	}
	groups := map[string][]*shoalpb.Task{}
	for _, t := range cl.tasks {
		if t.GetServiceId() == svc.GetId() {
			groups[slotKey(t)] = append(groups[slotKey(t)], t)
		}
	}
	for _, g := range groups {
		slices.SortFunc(g, newerTask)
	}
	var keys []string // slot keys in display order
	if spec.GetMode() == string(api.ModeGlobal) {
		for _, n := range eligibleNodes(spec, cl.nodes) {
			keys = append(keys, n.GetId())
		}
	} else {
		for slot := uint64(1); slot <= spec.GetReplicas(); slot++ {
			keys = append(keys, fmt.Sprint(slot))
		}
		v.summary = stoppingSummary(groups, spec.GetReplicas())
	}
	v.desired = len(keys)
	cur := current{spec: specOf(svc), restart: shoalpb.ToServiceSpec(spec).RestartPolicy}
	for _, k := range keys {
		s, failure := viewSlot(cur, groups[k], cl.hosts, old)
		if len(groups) == 0 && len(spec.GetDependsOn()) > 0 {
			// The orchestrator makes no task while a dependency is unmet.
			s.text += " (depends on " + dependencyNames(spec) + ")"
		}
		s.key = slotName(spec.GetName(), k, cl.hosts)
		v.slots = append(v.slots, s)
		if s.done {
			v.done++
			v.sig += s.task + ","
		}
		if failure != "" && v.failure == "" {
			v.failure = s.key + " " + failure
		}
	}
	v.converged = v.failure == "" && v.done == v.desired && v.summary == ""
	if v.summary != "" {
		v.summary = fmt.Sprintf("%d/%d converged, %s", v.done, v.desired, v.summary)
	}
	return v
}

func dependencyNames(spec *shoalpb.ServiceSpec) string {
	var names []string
	for _, d := range spec.GetDependsOn() {
		names = append(names, d.GetService())
	}
	return strings.Join(names, ", ")
}

// stoppingSummary counts the tasks that still run in slots above the
// replica count (a scale-down in progress).
func stoppingSummary(groups map[string][]*shoalpb.Task, replicas uint64) string {
	n := 0
	for _, g := range groups {
		for _, t := range g {
			if t.GetSlot() > replicas && !taskState(t).Terminal() {
				n++
			}
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("stopping %d extra task(s)", n)
}

// newerTask orders the tasks of one slot newest first.
func newerTask(a, b *shoalpb.Task) int {
	return cmp.Or(cmp.Compare(b.GetAttempt(), a.GetAttempt()),
		b.GetCreatedAt().AsTime().Compare(a.GetCreatedAt().AsTime()), cmp.Compare(a.GetId(), b.GetId()))
}

func taskState(t *shoalpb.Task) api.TaskState {
	s, err := api.ParseTaskState(t.GetStatus().GetState())
	if err != nil {
		return api.TaskNew
	}
	return s
}

func slotName(service, key string, hosts map[string]string) string {
	if h, ok := hosts[key]; ok {
		return service + "@" + h
	}
	return service + "." + key
}

// current is what a slot's tasks are compared with, worked out once per
// service and poll.
type current struct {
	spec    *api.ServiceSpec // the service's spec
	restart api.RestartPolicy
}

// viewSlot looks at the tasks of one slot, newest first.
func viewSlot(want current, group []*shoalpb.Task, hosts map[string]string, old map[string]bool) (s slotView, failure string) {
	var cur *shoalpb.Task
	for _, t := range group {
		if t.GetDesiredState() == api.TaskRunning.String() {
			cur = t
			break
		}
	}
	if cur == nil {
		return slotView{text: "no task yet"}, ""
	}
	st, host := taskState(cur), hosts[cur.GetNodeId()]
	s.text, s.task = taskText(cur, st, host), cur.GetId()
	rp := want.restart
	switch {
	case st == api.TaskRunning && upToDate(cur, want.spec) && taskUp(cur):
		s.done = true
		return s, ""
	case st == api.TaskRunning && upToDate(cur, want.spec):
		s.text += " (waiting for its health check)"
	case st == api.TaskRunning:
		s.text += " (older spec, to be replaced)"
	case st == api.TaskComplete && cur.GetStatus().GetExitCode() == 0 && rp.Condition != api.RestartAny:
		s.done = true
		return s, ""
	case st.Terminal():
		if ok, why := restartable(rp, group, cur); !ok {
			return s, fmt.Sprintf("%s and will not be restarted (%s)", s.text, why)
		}
		s.text += " (to be restarted)"
	}
	if n, last := newFailures(group, old); n >= maxSlotFailures {
		return s, fmt.Sprintf("failed %d times since shoalctl started waiting (last: %s)", n, last)
	}
	return s, ""
}

func taskText(t *shoalpb.Task, st api.TaskState, host string) string {
	text := withHealth(st.String(), t.GetStatus())
	switch {
	case host == "" || st < api.TaskAssigned:
	case st == api.TaskAssigned:
		text += " to " + host
	default:
		text += " on " + host
	}
	msg := t.GetStatus().GetErr()
	if st <= api.TaskPending {
		msg = t.GetStatus().GetPendingReason()
	}
	if msg == "" && st.Terminal() {
		msg = t.GetStatus().GetMessage()
	}
	if msg != "" {
		text += ": " + msg
	}
	return text
}

// upToDate reports whether a task runs the service's current spec as far
// as its container goes (api.SameRuntime, the orchestrator's rule).
func upToDate(task *shoalpb.Task, svc *api.ServiceSpec) bool {
	spec := shoalpb.ToServiceSpec(task.GetSpec())
	if spec == nil {
		spec = &api.ServiceSpec{}
	}
	return api.SameRuntime(spec, svc)
}

// restartable mirrors the orchestrator's restart policy for a task that
// ended: whether it will be replaced, and if not, why.
func restartable(rp api.RestartPolicy, group []*shoalpb.Task, t *shoalpb.Task) (bool, string) {
	st := taskState(t)
	if st == api.TaskOrphaned {
		return true, ""
	}
	failed := st == api.TaskFailed || st == api.TaskRejected || t.GetStatus().GetExitCode() != 0
	switch rp.Condition {
	case api.RestartNone:
		return false, "restart condition none"
	case api.RestartOnFailure:
		if !failed {
			return false, "it exited 0 and the restart condition is on-failure"
		}
	}
	if rp.MaxAttempts > 0 && endedBefore(group, t, rp.Window.Std()) >= rp.MaxAttempts {
		return false, fmt.Sprintf("max_attempts %d reached", rp.MaxAttempts)
	}
	return true, ""
}

// endedBefore counts the other tasks of the group, at t's spec version,
// that ended on their own within window before t (window 0: ever).
func endedBefore(group []*shoalpb.Task, t *shoalpb.Task, window time.Duration) uint64 {
	var n uint64
	at := t.GetStatus().GetTimestamp().AsTime()
	for _, o := range group {
		switch taskState(o) {
		case api.TaskComplete, api.TaskFailed, api.TaskRejected:
		default:
			continue
		}
		if o.GetId() == t.GetId() || o.GetSpecVersion() != t.GetSpecVersion() {
			continue
		}
		if window > 0 && o.GetStatus().GetTimestamp().AsTime().Before(at.Add(-window)) {
			continue
		}
		n++
	}
	return n
}

// newFailures counts the failed or rejected tasks of a group that were not
// over yet when the wait began, and gives the newest one's error.
func newFailures(group []*shoalpb.Task, old map[string]bool) (int, string) {
	n, last := 0, ""
	for _, t := range group {
		st := taskState(t)
		if old[t.GetId()] || (st != api.TaskFailed && st != api.TaskRejected) {
			continue
		}
		if n == 0 {
			last = cmp.Or(t.GetStatus().GetErr(), t.GetStatus().GetMessage(), st.String())
		}
		n++
	}
	return n, last
}

// eligibleNodes are the nodes a global service runs on: ready, active,
// and matching its constraints.
func eligibleNodes(spec *shoalpb.ServiceSpec, nodes []*shoalpb.NodeSummary) []*shoalpb.Node {
	cons, err := api.ParseConstraints(spec.GetPlacement().GetConstraints())
	if err != nil {
		// The manager validated the constraints; one it accepted but this
		// shoalctl cannot read counts as matching no node.
		return nil
	}
	var out []*shoalpb.Node
	for _, ns := range sortedNodes(nodes) {
		n := shoalpb.ToNode(ns.GetNode())
		if n == nil || n.Status != api.NodeReady || n.Availability != api.AvailabilityActive {
			continue
		}
		ok := true
		for _, c := range cons {
			ok = ok && c.Match(n)
		}
		if ok {
			out = append(out, ns.GetNode())
		}
	}
	return out
}

// viewDrain says how far a node is from drained: none of the tasks that
// held its resources (assigned to running) when the wait began, in watch,
// does any more.
func viewDrain(node *shoalpb.Node, tasks []*shoalpb.Task, watch map[string]bool, hosts map[string]string) view {
	v := view{name: node.GetHostname(), desired: len(watch)}
	var watched []*shoalpb.Task
	for _, t := range tasks {
		if watch[t.GetId()] {
			watched = append(watched, t)
		}
	}
	for _, t := range sortTasks(watched) {
		st := taskState(t)
		key := taskName(t, false)
		if t.GetSlot() == 0 {
			key = t.GetServiceName() + "@" + node.GetHostname()
		}
		s := slotView{key: key, text: taskText(t, st, node.GetHostname()), done: !st.Active()}
		if r := replacement(t, tasks); !s.done && r != nil {
			// The orchestrator may keep a task until its replacement runs
			// elsewhere; say what holds the replacement up.
			s.text += " (replacement " + taskText(r, taskState(r), hosts[r.GetNodeId()]) + ")"
		}
		v.slots = append(v.slots, s)
		if s.done {
			v.done++
		}
	}
	// A task that is gone from the state (removed) no longer holds the node.
	v.done += len(watch) - len(watched)
	left := len(watch) - v.done
	v.converged = left == 0
	v.summary = fmt.Sprintf("%d task(s) left to move", left)
	if v.converged {
		v.summary = "drained"
	}
	return v
}

// replacement is the newest other task of t's slot that has not ended.
func replacement(t *shoalpb.Task, tasks []*shoalpb.Task) *shoalpb.Task {
	var r *shoalpb.Task
	for _, o := range tasks {
		if o.GetId() == t.GetId() || o.GetServiceId() != t.GetServiceId() || slotKey(o) != slotKey(t) || taskState(o).Terminal() {
			continue
		}
		if r == nil || newerTask(o, r) < 0 {
			r = o
		}
	}
	return r
}

// slotsText joins the slots that are not done, for a timeout message.
func slotsText(v view) string {
	var parts []string
	for _, s := range v.slots {
		if !s.done {
			parts = append(parts, s.key+": "+s.text)
		}
	}
	return strings.Join(parts, "; ")
}
