package scheduler

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/shoal-sched/shoal/api"
)

// Schedule places tasks (each carries its service's spec: reservations,
// placement constraints, preferences, max per node, strategy) on nodes.
// Decisions take account of each other: a node's free resources shrink as
// tasks are placed on it in the same pass. Same input, same output.
//
// Tasks are handled in a fixed order whatever the order of the input:
// grouped by service and spec version (the tasks of a group share one spec,
// so the filters run once per group), then by slot and ID. A task that
// already names a node (a global service's task) is checked against that
// node only. Results list tasks in that order.
func Schedule(nodes []NodeInfo, tasks []*api.Task) Result {
	s := newState(nodes)
	var res Result
	for _, g := range groupTasks(tasks) {
		s.scheduleGroup(g, &res)
	}
	return res
}

// nodeState is one node as the pass sees it: its free resources and task
// count change as tasks land on it.
type nodeState struct {
	node *api.Node
	free api.Resources
	// tasks counts the tasks meant to run here (spread's second key).
	tasks int
}

// state is everything one pass knows. Nodes are sorted by ID, so a node's
// index orders it wherever the ID breaks a tie.
type state struct {
	nodes []nodeState
	byID  map[string]int32
	// services counts, per service, the tasks meant to run on each node
	// (by node index).
	services map[string]map[int32]int32
	// svcCount is the count of the group's service per node index, loaded
	// from services at the start of a group so the orderings read a slice.
	svcCount []int32
	// filtered caches the static filter result per constraint set: the
	// node-only checks do not change during a pass.
	filtered map[string]*staticResult
}

func newState(infos []NodeInfo) *state {
	sorted := make([]NodeInfo, 0, len(infos))
	for _, ni := range infos {
		if ni.Node != nil {
			sorted = append(sorted, ni)
		}
	}
	slices.SortStableFunc(sorted, func(a, b NodeInfo) int { return cmp.Compare(a.Node.ID, b.Node.ID) })
	// A node listed twice is counted once (the first in input order).
	sorted = slices.CompactFunc(sorted, func(a, b NodeInfo) bool { return a.Node.ID == b.Node.ID })

	s := &state{
		nodes:    make([]nodeState, len(sorted)),
		byID:     make(map[string]int32, len(sorted)),
		services: make(map[string]map[int32]int32),
		svcCount: make([]int32, len(sorted)),
		filtered: make(map[string]*staticResult),
	}
	for i, ni := range sorted {
		ns := &s.nodes[i]
		ns.node = ni.Node
		ns.free = ni.Node.Resources
		s.byID[ni.Node.ID] = int32(i)
		for _, t := range ni.Tasks {
			if t == nil || t.Status.State.Terminal() {
				continue
			}
			// Every non-terminal task holds its reservation until it stops,
			// even one told to shut down.
			ns.free = ns.free.Sub(reservation(t.Spec))
			if t.DesiredState <= api.TaskRunning {
				ns.tasks++
				s.serviceCounts(t.ServiceID)[int32(i)]++
			}
		}
	}
	return s
}

func (s *state) serviceCounts(serviceID string) map[int32]int32 {
	m := s.services[serviceID]
	if m == nil {
		m = make(map[int32]int32)
		s.services[serviceID] = m
	}
	return m
}

// reservation is what a task holds on its node; negative amounts (which
// validation rejects) count as zero so they cannot free a node.
func reservation(spec api.ServiceSpec) api.Resources {
	r := spec.Resources.Reservations
	return api.Resources{NanoCPUs: max(r.NanoCPUs, 0), MemoryBytes: max(r.MemoryBytes, 0)}
}

// group is the tasks of one service at one spec version.
type group struct {
	serviceID string
	spec      *api.ServiceSpec
	tasks     []*api.Task // those naming a node first, each part in order
}

func groupTasks(tasks []*api.Task) []group {
	sorted := make([]*api.Task, 0, len(tasks))
	for _, t := range tasks {
		if t != nil {
			sorted = append(sorted, t)
		}
	}
	slices.SortStableFunc(sorted, func(a, b *api.Task) int {
		return cmp.Or(
			cmp.Compare(a.ServiceID, b.ServiceID),
			cmp.Compare(a.SpecVersion, b.SpecVersion),
			cmp.Compare(unnamed(a), unnamed(b)), // tasks naming a node first
			cmp.Compare(a.Slot, b.Slot),
			cmp.Compare(a.NodeID, b.NodeID),
			cmp.Compare(a.ID, b.ID),
		)
	})
	var groups []group
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j].ServiceID == sorted[i].ServiceID && sorted[j].SpecVersion == sorted[i].SpecVersion {
			j++
		}
		groups = append(groups, group{serviceID: sorted[i].ServiceID, spec: &sorted[i].Spec, tasks: sorted[i:j]})
		i = j
	}
	return groups
}

func unnamed(t *api.Task) int {
	if t.NodeID == "" {
		return 1
	}
	return 0
}

// groupSpec is a group's spec, parsed once.
type groupSpec struct {
	constraints []api.Constraint
	preferences []api.Preference
	strategy    api.PlacementStrategy
	req         api.Resources
	maxPerNode  uint64
}

func parseGroupSpec(spec *api.ServiceSpec) (groupSpec, error) {
	cons, err := api.ParseConstraints(spec.Placement.Constraints)
	if err != nil {
		return groupSpec{}, err
	}
	prefs, err := api.ParsePreferences(spec.Placement.Preferences)
	if err != nil {
		return groupSpec{}, err
	}
	strategy := spec.Placement.Strategy
	switch strategy {
	case "":
		strategy = api.StrategySpread
	case api.StrategySpread, api.StrategyBinpack:
	default:
		return groupSpec{}, fmt.Errorf("%w strategy %q: want %s or %s",
			api.ErrInvalidPlacement, strategy, api.StrategySpread, api.StrategyBinpack)
	}
	return groupSpec{
		constraints: cons, preferences: prefs, strategy: strategy,
		req: reservation(*spec), maxPerNode: spec.Placement.MaxReplicasPerNode,
	}, nil
}

func (s *state) scheduleGroup(g group, res *Result) {
	unplaceAll := func(tasks []*api.Task, reason string) {
		for _, t := range tasks {
			res.Unplaced = append(res.Unplaced, Unplaced{TaskID: t.ID, Reason: reason})
		}
	}
	if len(s.nodes) == 0 {
		unplaceAll(g.tasks, reasonNoNodes)
		return
	}
	gs, err := parseGroupSpec(g.spec)
	if err != nil {
		unplaceAll(g.tasks, "cannot place: "+err.Error())
		return
	}
	s.loadServiceCounts(g.serviceID)
	defer s.clearServiceCounts(g.serviceID)
	gc := &groupCtx{s: s, serviceID: g.serviceID, spec: gs}

	rest := g.tasks
	for len(rest) > 0 && rest[0].NodeID != "" {
		t := rest[0]
		rest = rest[1:]
		if i, reason := gc.checkNamedNode(t.NodeID); reason != "" {
			res.Unplaced = append(res.Unplaced, Unplaced{TaskID: t.ID, Reason: reason})
		} else {
			gc.apply(i)
			res.Decisions = append(res.Decisions, Decision{TaskID: t.ID, NodeID: t.NodeID})
		}
	}
	if len(rest) == 0 {
		return
	}
	root := gc.buildTree()
	for k, t := range rest {
		i, ok := gc.place(root)
		if !ok {
			// Nothing fits now, and nothing frees up during the pass.
			unplaceAll(rest[k:], gc.explain())
			return
		}
		res.Decisions = append(res.Decisions, Decision{TaskID: t.ID, NodeID: s.nodes[i].node.ID})
	}
}

// loadServiceCounts fills svcCount for one service. Map order does not
// matter: every entry writes its own slot.
func (s *state) loadServiceCounts(serviceID string) {
	for i, n := range s.services[serviceID] {
		s.svcCount[i] = n
	}
}

func (s *state) clearServiceCounts(serviceID string) {
	for i := range s.services[serviceID] {
		s.svcCount[i] = 0
	}
}

// groupCtx is the state of placing one group.
type groupCtx struct {
	s         *state
	serviceID string
	spec      groupSpec
	static    *staticResult
}

// apply lands one task of the group on node i.
func (g *groupCtx) apply(i int32) {
	n := &g.s.nodes[i]
	n.free = n.free.Sub(g.spec.req)
	n.tasks++
	g.s.svcCount[i]++
	g.s.serviceCounts(g.serviceID)[i]++
}
