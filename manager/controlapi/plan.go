package controlapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
	"github.com/shoal-sched/shoal/scheduler"
)

// Plan actions and planned task actions.
const (
	actionCreate = "create"
	actionUpdate = "update"
	actionNone   = "none"

	taskStart = "start"
	taskStop  = "stop"
	taskKeep  = "keep"
)

// planCreate is what creating a service with spec would do on the state v.
func planCreate(v *raftstore.View, spec *api.ServiceSpec) *shoalpb.Plan {
	return &shoalpb.Plan{
		Action:  actionCreate,
		Changes: diffSpecs(&api.ServiceSpec{}, spec),
		Tasks:   planTasks(v, nil, spec),
	}
}

// planUpdate is what replacing svc's spec with spec would do on the state v.
func planUpdate(v *raftstore.View, svc *api.Service, spec *api.ServiceSpec) *shoalpb.Plan {
	changes := diffSpecs(&svc.Spec, spec)
	if len(changes) == 0 {
		return &shoalpb.Plan{Action: actionNone}
	}
	p := &shoalpb.Plan{Action: actionUpdate, Changes: changes, Tasks: planTasks(v, svc, spec)}
	if specReplacesTasks(&svc.Spec, spec) {
		p.Rollout = rolloutPlan(len(liveTasks(v.TasksByService(svc.ID))), spec.UpdateConfig)
	}
	return p
}

// planTasks lists, slot by slot (or node by node for a global service),
// which tasks would be kept, stopped or started, and where the real
// scheduler would put the started ones now. svc is nil for a new service.
func planTasks(v *raftstore.View, svc *api.Service, spec *api.ServiceSpec) []*shoalpb.PlannedTask {
	var current []*api.Task
	replace := false
	// A new service has no id yet; the scheduler only uses it to count the
	// service's tasks per node.
	pl := &planner{v: v, serviceID: "(new)", version: 1, spec: spec}
	if svc != nil {
		pl.serviceID, pl.version = svc.ID, svc.SpecVersion+1
		current = liveTasks(v.TasksByService(svc.ID))
		replace = specReplacesTasks(&svc.Spec, spec)
	}
	var exclude string
	if replace {
		// A rolling update stops every old task: their resources come back.
		exclude = svc.ID
	}
	pl.nodes = nodeInfos(v, exclude)
	var out []*shoalpb.PlannedTask
	if spec.Mode == api.ModeGlobal {
		out = pl.global(current, replace)
	} else {
		out = pl.replicated(current, replace)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Slot != out[j].Slot {
			return out[i].Slot < out[j].Slot
		}
		return out[i].Hostname < out[j].Hostname
	})
	return out
}

// planner places the tasks a service write would start.
type planner struct {
	v         *raftstore.View
	serviceID string
	version   uint64 // the spec version the write would make
	spec      *api.ServiceSpec
	nodes     []scheduler.NodeInfo
}

// specOf gives the planned tasks the new spec, and every stored task the
// spec of its version.
func (pl *planner) specOf(t *api.Task) *api.ServiceSpec {
	if t.ServiceID == pl.serviceID && t.SpecVersion == pl.version {
		return pl.spec
	}
	return pl.v.ServiceSpec(t.ServiceID, t.SpecVersion)
}

func (pl *planner) schedule(place []*api.Task) scheduler.Result {
	return scheduler.Schedule(pl.nodes, place, pl.specOf)
}

// candidate is a task as the orchestrator would make it, for the
// scheduler to place.
func (pl *planner) candidate(slot uint64, nodeID string) *api.Task {
	return &api.Task{
		ID:        fmt.Sprintf("planned-%s-%d", nodeID, slot),
		ServiceID: pl.serviceID, ServiceName: pl.spec.Name, Slot: slot, NodeID: nodeID, SpecVersion: pl.version,
		DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskPending},
	}
}

func (pl *planner) replicated(current []*api.Task, replace bool) []*shoalpb.PlannedTask {
	v, spec := pl.v, pl.spec
	bySlot := map[uint64]*api.Task{}
	for _, t := range current {
		bySlot[t.Slot] = t
	}
	var out []*shoalpb.PlannedTask
	var place []*api.Task
	for slot := uint64(1); slot <= spec.Replicas; slot++ {
		if t, ok := bySlot[slot]; ok && !replace {
			out = append(out, planned(v, slot, t.NodeID, taskKeep, ""))
			continue
		}
		place = append(place, pl.candidate(slot, ""))
	}
	for _, t := range current {
		if t.Slot > spec.Replicas {
			out = append(out, planned(v, t.Slot, t.NodeID, taskStop, ""))
		}
	}
	if len(place) == 0 {
		return out
	}
	slotOf := map[string]uint64{}
	for _, t := range place {
		slotOf[t.ID] = t.Slot
	}
	res := pl.schedule(place)
	for _, d := range res.Decisions {
		out = append(out, planned(v, slotOf[d.TaskID], d.NodeID, taskStart, ""))
	}
	for _, u := range res.Unplaced {
		out = append(out, planned(v, slotOf[u.TaskID], "", taskStart, u.Reason))
	}
	return out
}

// global plans one task on every node. The scheduler checks a task that
// names its node against that node only, so one pass gives every node's
// answer.
func (pl *planner) global(current []*api.Task, replace bool) []*shoalpb.PlannedTask {
	v := pl.v
	onNode := map[string]bool{}
	for _, t := range current {
		onNode[t.NodeID] = true
	}
	var out []*shoalpb.PlannedTask
	var place []*api.Task
	for _, n := range pl.nodes {
		if onNode[n.Node.ID] && !replace {
			out = append(out, planned(v, 0, n.Node.ID, taskKeep, ""))
			continue
		}
		place = append(place, pl.candidate(0, n.Node.ID))
	}
	res := pl.schedule(place)
	for _, d := range res.Decisions {
		out = append(out, planned(v, 0, d.NodeID, taskStart, ""))
	}
	nodeOf := map[string]string{}
	for _, t := range place {
		nodeOf[t.ID] = t.NodeID
	}
	for _, u := range res.Unplaced {
		out = append(out, planned(v, 0, nodeOf[u.TaskID], taskStart, u.Reason))
	}
	return out
}

func planned(v *raftstore.View, slot uint64, nodeID, action, reason string) *shoalpb.PlannedTask {
	p := &shoalpb.PlannedTask{Slot: slot, NodeId: nodeID, Action: action, Reason: reason}
	if n := v.Node(nodeID); n != nil {
		p.Hostname = n.Hostname
	}
	return p
}

// liveTasks are the tasks meant to run that have not stopped.
func liveTasks(tasks []*api.Task) []*api.Task {
	var out []*api.Task
	for _, t := range tasks {
		if t.DesiredState == api.TaskRunning && !t.Status.State.Terminal() {
			out = append(out, t)
		}
	}
	return out
}

// nodeInfos gives every node with the tasks that hold its resources,
// leaving out the tasks of service exclude.
func nodeInfos(v *raftstore.View, exclude string) []scheduler.NodeInfo {
	nodes := v.Nodes()
	out := make([]scheduler.NodeInfo, 0, len(nodes))
	for _, n := range nodes {
		info := scheduler.NodeInfo{Node: n}
		for _, t := range v.TasksByNode(n.ID) {
			if t.Status.State.Active() && t.ServiceID != exclude {
				info.Tasks = append(info.Tasks, t)
			}
		}
		out = append(out, info)
	}
	return out
}

// specReplacesTasks reports whether going from old to new changes what the
// tasks run (api.SameRuntime, the orchestrator's rule): then every task is
// replaced by a rolling update.
func specReplacesTasks(old, new *api.ServiceSpec) bool {
	return !api.SameRuntime(old, new)
}

// diffSpecs lists the fields that differ between two specs, by their JSON
// path (e.g. "resources.limits.memory_bytes"), "" standing for unset.
func diffSpecs(old, new *api.ServiceSpec) []*shoalpb.FieldChange {
	a, b := flattenSpec(old), flattenSpec(new)
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []*shoalpb.FieldChange
	for k := range keys {
		if a[k] != b[k] {
			out = append(out, &shoalpb.FieldChange{Field: k, Old: a[k], New: b[k]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

// flattenSpec maps each set field of a spec to its value as text. Lists are
// kept whole (as compact JSON): an argv or env list reads best as one value.
func flattenSpec(s *api.ServiceSpec) map[string]string {
	raw, err := json.Marshal(s)
	if err != nil {
		// Every field of ServiceSpec marshals; failing here is a bug.
		panic("controlapi: marshal spec: " + err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree map[string]any
	if err := dec.Decode(&tree); err != nil {
		panic("controlapi: unmarshal spec: " + err.Error())
	}
	out := map[string]string{}
	flatten("", tree, out)
	return out
}

func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if prefix != "" {
				k = prefix + "." + k
			}
			flatten(k, e, out)
		}
	case nil:
	case string:
		out[prefix] = x
	case json.Number, bool:
		out[prefix] = fmt.Sprint(x)
	default:
		// A list decoded from JSON always encodes again.
		b, _ := json.Marshal(x)
		out[prefix] = string(b)
	}
}
