package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/shoal-sched/shoal/api"
)

// reasonNoNodes is the reason given when the cluster has no nodes at all.
const reasonNoNodes = "no suitable node (the cluster has no nodes)"

// rejectKind is why a filter turned a node down. The order of the
// constants is the order of the filter pipeline: a node is charged to the
// first filter it fails.
type rejectKind uint8

const (
	rejNone rejectKind = iota
	rejDown
	rejRestarting
	rejNotReady
	rejPaused
	rejDrained
	rejNotActive
	rejConstraint // which one is in rejection.constraint
	rejCPU
	rejMemory
	rejCPUAndMemory
	rejMaxReplicas
	rejHostPort
	numRejectKinds
)

// rejection is one node's verdict.
type rejection struct {
	kind       rejectKind
	constraint int // index into the group's constraints for rejConstraint
}

// staticNode applies the filters that depend on the node alone and on the
// group's constraints: readiness, availability, constraints. Their answer
// does not change during a pass.
func staticNode(n *api.Node, cons []api.Constraint) rejection {
	switch n.Status {
	case api.NodeReady:
	case api.NodeDown:
		return rejection{kind: rejDown}
	case api.NodeRestarting:
		// Its agent is away: a task placed now would wait for it.
		return rejection{kind: rejRestarting}
	default:
		return rejection{kind: rejNotReady}
	}
	switch n.Availability {
	case api.AvailabilityActive, "": // empty is the default, active
	case api.AvailabilityPause:
		return rejection{kind: rejPaused}
	case api.AvailabilityDrain:
		return rejection{kind: rejDrained}
	default:
		return rejection{kind: rejNotActive}
	}
	for k, c := range cons {
		if !c.Match(n) {
			return rejection{kind: rejConstraint, constraint: k}
		}
	}
	return rejection{}
}

// dynamic applies the filters whose answer changes as tasks land: free
// resources and the per-node replica cap. Within one group a node that
// fails them never passes again (free resources only shrink, counts only
// grow), which is what lets the strategies drop it for good.
func (g *groupCtx) dynamic(i int32) rejectKind {
	free, req := g.s.nodes[i].free, g.spec.req
	cpu, mem := free.NanoCPUs < req.NanoCPUs, free.MemoryBytes < req.MemoryBytes
	switch {
	case cpu && mem:
		return rejCPUAndMemory
	case cpu:
		return rejCPU
	case mem:
		return rejMemory
	}
	if g.spec.maxPerNode > 0 && uint64(g.s.svcCount[i]) >= g.spec.maxPerNode {
		return rejMaxReplicas
	}
	if g.s.nodes[i].holdsAny(g.spec.hostPorts) {
		return rejHostPort
	}
	return rejNone
}

// staticResult is the static filter's answer for one constraint set: the
// nodes that pass (by index, in ID order) and a tally of the rest.
type staticResult struct {
	candidates []int32
	rejected   tally
}

// staticFilter runs the static filters over every node once per
// constraint set.
func (s *state) staticFilter(cons []api.Constraint) *staticResult {
	texts := make([]string, len(cons))
	for k, c := range cons {
		texts[k] = c.String()
	}
	key := strings.Join(texts, "\x00")
	if r, ok := s.filtered[key]; ok {
		return r
	}
	r := &staticResult{rejected: newTally(len(cons))}
	for i := range s.nodes {
		if rej := staticNode(s.nodes[i].node, cons); rej.kind != rejNone {
			r.rejected.add(rej)
			continue
		}
		r.candidates = append(r.candidates, int32(i))
	}
	s.filtered[key] = r
	return r
}

// checkNamedNode decides whether a task that names its node (a global
// service's task) can run there; it returns the node's index, or a reason.
func (g *groupCtx) checkNamedNode(id string) (int32, string) {
	i, ok := g.s.byID[id]
	if !ok {
		return -1, fmt.Sprintf("node %s is not in the cluster", id)
	}
	rej := staticNode(g.s.nodes[i].node, g.spec.constraints)
	if rej.kind == rejNone {
		rej.kind = g.dynamic(i)
	}
	if rej.kind == rejNone {
		return i, ""
	}
	return i, fmt.Sprintf("node %s not suitable (%s)", id, g.spec.describe(rej))
}

// explain says why no node can take the group's next task: the static
// rejections plus each candidate's current dynamic one.
func (g *groupCtx) explain() string {
	t := g.static.rejected.clone()
	for _, i := range g.static.candidates {
		if k := g.dynamic(i); k != rejNone {
			t.add(rejection{kind: k})
		}
	}
	return "no suitable node (" + t.text(g.spec) + ")"
}

// tally counts rejected nodes per filter (and per constraint).
type tally struct {
	kinds       [numRejectKinds]int
	constraints []int
}

func newTally(numConstraints int) tally { return tally{constraints: make([]int, numConstraints)} }

func (t *tally) add(r rejection) {
	if r.kind == rejConstraint {
		t.constraints[r.constraint]++
		return
	}
	t.kinds[r.kind]++
}

func (t tally) clone() tally {
	t.constraints = slices.Clone(t.constraints)
	return t
}

// text lists the rejections, most nodes first, pipeline order among
// equals: "insufficient memory on 3 nodes; constraint node.labels.zone==a
// not met on 2 nodes".
func (t tally) text(gs groupSpec) string {
	type part struct {
		text  string
		nodes int
	}
	var parts []part
	for k := rejNone + 1; k < numRejectKinds; k++ {
		if k == rejConstraint {
			for c, n := range t.constraints {
				if n > 0 {
					parts = append(parts, part{gs.describe(rejection{kind: k, constraint: c}), n})
				}
			}
			continue
		}
		if t.kinds[k] > 0 {
			parts = append(parts, part{gs.describe(rejection{kind: k}), t.kinds[k]})
		}
	}
	slices.SortStableFunc(parts, func(a, b part) int { return cmp.Compare(b.nodes, a.nodes) })
	var b strings.Builder
	for k, p := range parts {
		if k > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s on %d node", p.text, p.nodes)
		if p.nodes != 1 {
			b.WriteByte('s')
		}
	}
	return b.String()
}

// describe names one rejection for a person.
func (gs groupSpec) describe(r rejection) string {
	switch r.kind {
	case rejDown:
		return "node down"
	case rejRestarting:
		return "node restarting"
	case rejNotReady:
		return "node not ready"
	case rejPaused:
		return "node paused"
	case rejDrained:
		return "node drained"
	case rejNotActive:
		return "node not active"
	case rejConstraint:
		return "constraint " + gs.constraints[r.constraint].String() + " not met"
	case rejCPU:
		return "insufficient CPU"
	case rejMemory:
		return "insufficient memory"
	case rejCPUAndMemory:
		return "insufficient CPU and memory"
	case rejMaxReplicas:
		return fmt.Sprintf("max replicas per node (%d) reached", gs.maxPerNode)
	case rejHostPort:
		return hostPortText(gs.hostPorts)
	}
	return "no reason"
}
