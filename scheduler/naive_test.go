package scheduler

import (
	"github.com/shoal-sched/shoal/api"
)

// scheduleNaive is the obvious scheduler that Schedule must agree with:
// for every task it runs every filter on every node and takes the best
// node by the same ordering. The property tests compare the two task by
// task (decisions and reasons); the benchmarks show what the index buys.
func scheduleNaive(nodes []NodeInfo, tasks []*api.Task) Result {
	s := newState(nodes, tasks, embedded)
	// Buffers reused across tasks, so the baseline pays for its scans,
	// not for garbage.
	var scratch naiveScratch
	res := Result{Decisions: make([]Decision, 0, len(tasks))}
	for _, g := range groupTasks(tasks, embedded) {
		unplace := func(t *api.Task, reason string) {
			res.Unplaced = append(res.Unplaced, Unplaced{TaskID: t.ID, Reason: reason})
		}
		gs, err := parseGroupSpec(g.spec)
		s.loadServiceCounts(g.serviceID)
		gc := &groupCtx{s: s, serviceID: g.serviceID, spec: gs}
		for _, t := range g.tasks {
			var i int32
			var reason string
			switch {
			case err != nil:
				reason = "cannot place: " + err.Error()
			case len(s.nodes) == 0:
				reason = reasonNoNodes
			case t.NodeID != "":
				if i, reason = gc.checkNamedNode(t.NodeID); reason == "" {
					gc.apply(i)
				}
			default:
				i, reason = naivePick(gc, &scratch)
			}
			if reason != "" {
				unplace(t, reason)
				continue
			}
			res.Decisions = append(res.Decisions, Decision{TaskID: t.ID, NodeID: s.nodes[i].node.ID})
		}
		s.clearServiceCounts(g.serviceID)
	}
	return res
}

// prefValue is a node's value of a spread label; missing sorts last.
type prefValue struct {
	value   string
	missing bool
}

func (v prefValue) before(o prefValue) bool {
	if v.missing != o.missing {
		return !v.missing
	}
	return v.value < o.value
}

func valueOf(p api.Preference, n *api.Node) prefValue {
	v, ok := p.Value(n)
	return prefValue{value: v, missing: !ok}
}

type naiveScratch struct{ static, fits []int32 }

// naivePick scans every node for one task and places it.
func naivePick(g *groupCtx, scratch *naiveScratch) (int32, string) {
	rejected := newTally(len(g.spec.constraints))
	static, fits := scratch.static[:0], scratch.fits[:0]
	defer func() { scratch.static, scratch.fits = static[:0], fits[:0] }()
	for i := range g.s.nodes {
		i := int32(i)
		if r := staticNode(g.s.nodes[i].node, g.spec.constraints); r.kind != rejNone {
			rejected.add(r)
			continue
		}
		static = append(static, i)
		if k := g.dynamic(i); k != rejNone {
			rejected.add(rejection{kind: k})
			continue
		}
		fits = append(fits, i)
	}
	if len(fits) == 0 {
		return -1, "no suitable node (" + rejected.text(g.spec) + ")"
	}
	for _, p := range g.spec.preferences {
		// Of the label values with a node that fits, the one whose
		// candidates hold the fewest tasks of the service.
		count := make(map[prefValue]int64)
		for _, i := range static {
			count[valueOf(p, g.s.nodes[i].node)] += int64(g.s.svcCount[i])
		}
		best := valueOf(p, g.s.nodes[fits[0]].node)
		for _, i := range fits[1:] {
			v := valueOf(p, g.s.nodes[i].node)
			if count[v] < count[best] || (count[v] == count[best] && v.before(best)) {
				best = v
			}
		}
		keep := func(list []int32) []int32 {
			out := list[:0] // filtering in place
			for _, i := range list {
				if valueOf(p, g.s.nodes[i].node) == best {
					out = append(out, i)
				}
			}
			return out
		}
		static, fits = keep(static), keep(fits)
	}
	less := g.less()
	best := fits[0]
	for _, i := range fits[1:] {
		if less(i, best) {
			best = i
		}
	}
	g.apply(best)
	return best, ""
}
