package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/shoal-sched/shoal/api"
)

// Schedule places tasks on nodes, each by the spec specOf gives it
// (reservations, placement constraints, preferences, max per node,
// strategy); the tasks listed on nodes hold their specs' reservations.
// Decisions take account of each other: a node's free resources shrink as
// tasks are placed on it in the same pass. Same input, same output.
//
// A node takes a task when it is ready, active (or has no availability
// set), meets every constraint, has the reserved CPU and memory free and
// holds fewer than MaxReplicasPerNode tasks of the service. Every
// non-terminal task listed on a node holds its reservation; those whose
// desired state is at most running also count for spread and the cap.
//
// Tasks are handled in a fixed order whatever the order of the input:
// grouped by service and spec version (the tasks of a group share one spec,
// so the filters run once per group); within a group, tasks naming a node
// (a global service's tasks, checked against that node only) come first,
// then by slot and ID. Results list tasks in that order.
func Schedule(nodes []NodeInfo, tasks []*api.Task, specOf SpecOf) Result {
	s := newState(nodes, tasks, specOf)
	res := Result{Decisions: make([]Decision, 0, len(tasks))}
	for _, g := range groupTasks(tasks, specOf) {
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
	// hostPorts are the host-mode published ports ("8080/tcp") held by
	// the node's tasks (nil when none).
	hostPorts map[string]bool
}

// state is everything one pass knows. Nodes are sorted by ID, so a node's
// index orders it wherever the ID breaks a tie.
type state struct {
	nodes []nodeState
	byID  map[string]int32
	// services lists, per service, the node (index) of each of its tasks
	// meant to run: one entry per task, existing or placed in this pass.
	services map[string][]int32
	// svcCount is the count of the group's service per node index, loaded
	// from services at the start of a group so the orderings read a slice.
	svcCount []int32
	// filtered caches the static filter result per constraint set: the
	// node-only checks do not change during a pass.
	filtered map[string]*staticResult
	// heapSpace backs the heaps of the group being placed; a group's tree
	// is dropped before the next one is built.
	heapSpace []int32
}

// newState indexes the nodes. A task to place that names a node may also
// be listed among that node's tasks (a global task is created with its
// node); it is counted once, as a task to place.
func newState(infos []NodeInfo, placing []*api.Task, specOf SpecOf) *state {
	named := make(map[string]bool)
	for _, t := range placing {
		if t != nil && t.NodeID != "" {
			named[t.ID] = true
		}
	}
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
		nodes:     make([]nodeState, len(sorted)),
		byID:      make(map[string]int32, len(sorted)),
		services:  make(map[string][]int32),
		svcCount:  make([]int32, len(sorted)),
		filtered:  make(map[string]*staticResult),
		heapSpace: make([]int32, 0, len(sorted)),
	}
	for i, ni := range sorted {
		ns := &s.nodes[i]
		ns.node = ni.Node
		s.byID[ni.Node.ID] = int32(i)
		var own Load
		for _, t := range ni.Tasks {
			if t == nil || named[t.ID] {
				continue
			}
			// Every task that has not ended holds its reservation until
			// it stops, even one told to shut down.
			h, ok := Holds(t, specOf(t))
			if !ok {
				continue
			}
			if ni.Load == nil {
				own.Add(h)
			}
			if h.Counts {
				s.services[t.ServiceID] = append(s.services[t.ServiceID], int32(i))
			}
		}
		load := ni.Load
		if load == nil {
			load = &own
		}
		ns.free = load.Free(ni.Node.Resources)
		ns.tasks = load.Tasks
		if len(load.Ports) > 0 {
			ns.hostPorts = make(map[string]bool, len(load.Ports))
			for p := range load.Ports {
				ns.hostPorts[p] = true
			}
		}
	}
	return s
}

// reservation is what a task holds on its node; negative amounts (which
// validation rejects) count as zero so they cannot free a node, and so
// does an unknown spec.
func reservation(spec *api.ServiceSpec) api.Resources {
	if spec == nil {
		return api.Resources{}
	}
	r := spec.Resources.Reservations
	return api.Resources{NanoCPUs: max(r.NanoCPUs, 0), MemoryBytes: max(r.MemoryBytes, 0)}
}

// group is the tasks of one service at one spec version.
type group struct {
	serviceID string
	version   uint64
	spec      *api.ServiceSpec // nil: not known
	tasks     []*api.Task      // those naming a node first, each part in order
}

// groupTasks buckets the tasks by service and spec version (a map, then
// the keys sorted: cheaper than comparing service IDs across the whole
// sort), sorts each bucket and cuts it where the placement changes.
func groupTasks(tasks []*api.Task, specOf SpecOf) []group {
	type key struct {
		service string
		version uint64
	}
	buckets := make(map[key][]*api.Task)
	for _, t := range tasks {
		if t != nil {
			k := key{t.ServiceID, t.SpecVersion}
			buckets[k] = append(buckets[k], t)
		}
	}
	keys := make([]key, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(strings.Compare(a.service, b.service), cmp.Compare(a.version, b.version))
	})
	var groups []group
	for _, k := range keys {
		bucket := buckets[k]
		slices.SortFunc(bucket, compareInGroup)
		for i := 0; i < len(bucket); {
			spec := specOf(bucket[i])
			j := i + 1
			for j < len(bucket) && samePlacement(spec, specOf(bucket[j])) {
				j++
			}
			groups = append(groups, group{serviceID: k.service, version: k.version, spec: spec, tasks: bucket[i:j]})
			i = j
		}
	}
	return groups
}

// compareInGroup orders the tasks of one service and version: tasks
// naming a node first, then by slot, node and ID.
func compareInGroup(a, b *api.Task) int {
	if (a.NodeID == "") != (b.NodeID == "") {
		if a.NodeID != "" {
			return -1
		}
		return 1
	}
	if a.Slot != b.Slot {
		return cmp.Compare(a.Slot, b.Slot)
	}
	return cmp.Or(strings.Compare(a.NodeID, b.NodeID), strings.Compare(a.ID, b.ID))
}

// samePlacement reports whether two tasks of one service and version can
// share their filters. The version alone should decide it; comparing the
// placement fields as well means a caller that mixes specs under one
// version gets smaller groups, never a violated constraint.
func samePlacement(a, b *api.ServiceSpec) bool {
	if a == b {
		return true // one spec (or both unknown): the usual case
	}
	if a == nil || b == nil {
		return false
	}
	pa, pb := &a.Placement, &b.Placement
	return a.Resources.Reservations == b.Resources.Reservations &&
		pa.MaxReplicasPerNode == pb.MaxReplicasPerNode && pa.Strategy == pb.Strategy &&
		slices.Equal(hostPorts(a), hostPorts(b)) &&
		slices.Equal(pa.Constraints, pb.Constraints) && slices.Equal(pa.Preferences, pb.Preferences)
}

// groupSpec is a group's spec, parsed once.
type groupSpec struct {
	constraints []api.Constraint
	preferences []api.Preference
	strategy    api.PlacementStrategy
	req         api.Resources
	maxPerNode  uint64
	hostPorts   []string // host-mode published ports, "8080/tcp"
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
		req: reservation(spec), maxPerNode: spec.Placement.MaxReplicasPerNode,
		hostPorts: hostPorts(spec),
	}, nil
}

func (s *state) scheduleGroup(g group, res *Result) {
	unplaceAll := func(tasks []*api.Task, reason string) {
		for _, t := range tasks {
			res.Unplaced = append(res.Unplaced, Unplaced{TaskID: t.ID, Reason: reason})
		}
	}
	if g.spec == nil {
		unplaceAll(g.tasks, fmt.Sprintf("cannot place: spec version %d of the service is not known", g.version))
		return
	}
	gs, err := parseGroupSpec(g.spec)
	if err != nil {
		unplaceAll(g.tasks, "cannot place: "+err.Error())
		return
	}
	if len(s.nodes) == 0 {
		unplaceAll(g.tasks, reasonNoNodes)
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
	root := gc.buildTree(len(rest))
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

// loadServiceCounts fills svcCount for one service.
func (s *state) loadServiceCounts(serviceID string) {
	for _, i := range s.services[serviceID] {
		s.svcCount[i]++
	}
}

func (s *state) clearServiceCounts(serviceID string) {
	for _, i := range s.services[serviceID] {
		s.svcCount[i] = 0
	}
}

// groupCtx is the state of placing one group.
type groupCtx struct {
	s         *state
	serviceID string
	spec      groupSpec
	static    *staticResult
	numTasks  int // tasks the tree is built for
}

// apply lands one task of the group on node i.
func (g *groupCtx) apply(i int32) {
	n := &g.s.nodes[i]
	n.free = n.free.Sub(g.spec.req)
	n.holdPorts(g.spec.hostPorts)
	n.tasks++
	g.s.svcCount[i]++
	g.s.services[g.serviceID] = append(g.s.services[g.serviceID], i)
}
