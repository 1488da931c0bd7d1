package scheduler

import (
	"slices"

	"github.com/shoal-sched/shoal/api"
)

// The strategies order the candidate nodes of a group; the best node that
// still fits takes the next task. The order lives in a heap per leaf of the
// preference tree, so a placement costs O(log n) instead of a rescan:
//
//   - placing a task changes only the chosen node's key, which is fixed in
//     place (spread: the key grows; binpack: it shrinks);
//   - a node that no longer fits is popped for good: within a group free
//     resources only shrink and replica counts only grow.

// less returns the strategy's order on node indices; ties end with the
// index, which is the node ID order.
func (g *groupCtx) less() func(a, b int32) bool {
	nodes, svc := g.s.nodes, g.s.svcCount
	if g.spec.strategy == api.StrategyBinpack {
		// Fullest first: least free memory, then least free CPU.
		return func(a, b int32) bool {
			fa, fb := nodes[a].free, nodes[b].free
			if fa.MemoryBytes != fb.MemoryBytes {
				return fa.MemoryBytes < fb.MemoryBytes
			}
			if fa.NanoCPUs != fb.NanoCPUs {
				return fa.NanoCPUs < fb.NanoCPUs
			}
			return a < b
		}
	}
	// Spread, as Swarm: fewest tasks of this service, then fewest tasks,
	// then most free memory, then most free CPU.
	return func(a, b int32) bool {
		if svc[a] != svc[b] {
			return svc[a] < svc[b]
		}
		na, nb := &nodes[a], &nodes[b]
		if na.tasks != nb.tasks {
			return na.tasks < nb.tasks
		}
		if na.free.MemoryBytes != nb.free.MemoryBytes {
			return na.free.MemoryBytes > nb.free.MemoryBytes
		}
		if na.free.NanoCPUs != nb.free.NanoCPUs {
			return na.free.NanoCPUs > nb.free.NanoCPUs
		}
		return a < b
	}
}

// branch is a node of the preference tree. Each level splits the
// candidates by the value of one spread label (nodes without the label are
// a branch of their own); the next task goes down the branch holding the
// fewest tasks of the service. Without preferences the tree is one leaf.
type branch struct {
	count int64 // tasks of the service on the branch's candidates
	rank  int   // order among siblings: label value, missing label last
	kids  minHeap[*branch]
	nodes minHeap[int32] // leaf only: candidates that may still fit
	leaf  bool
}

func (b *branch) live() bool {
	if b.leaf {
		return len(b.nodes.items) > 0
	}
	return len(b.kids.items) > 0
}

func branchLess(a, b *branch) bool {
	if a.count != b.count {
		return a.count < b.count
	}
	return a.rank < b.rank
}

// buildTree runs the static filters for the group and arranges the
// candidates that fit now by the group's preferences and strategy, for
// numTasks tasks to place.
func (g *groupCtx) buildTree(numTasks int) *branch {
	g.numTasks = numTasks
	g.static = g.s.staticFilter(g.spec.constraints)
	g.s.heapSpace = g.s.heapSpace[:0]
	return g.buildBranch(g.static.candidates, 0, g.less())
}

func (g *groupCtx) buildBranch(cands []int32, level int, less func(a, b int32) bool) *branch {
	b := &branch{}
	for _, i := range cands {
		b.count += int64(g.s.svcCount[i])
	}
	if level == len(g.spec.preferences) {
		b.leaf = true
		// Each leaf takes the next stretch of heapSpace: the leaves hold
		// disjoint candidates, so the stretches never outgrow it.
		start := len(g.s.heapSpace)
		for _, i := range cands {
			if g.dynamic(i) == rejNone {
				g.s.heapSpace = append(g.s.heapSpace, i)
			}
		}
		items := g.s.heapSpace[start:len(g.s.heapSpace):len(g.s.heapSpace)]
		b.nodes = minHeap[int32]{items: keepBest(items, g.numTasks, less), less: less}
		b.nodes.init()
		return b
	}
	b.kids.less = branchLess
	for rank, part := range g.partition(cands, g.spec.preferences[level]) {
		k := g.buildBranch(part, level+1, less)
		k.rank = rank
		if k.live() {
			b.kids.items = append(b.kids.items, k)
		}
	}
	b.kids.init()
	return b
}

// partition splits candidates by their value of the preference's label:
// values in order, then the nodes without the label. Each part keeps the
// candidates' order.
func (g *groupCtx) partition(cands []int32, p api.Preference) [][]int32 {
	byValue := make(map[string][]int32)
	var missing []int32
	for _, i := range cands {
		if v, ok := p.Value(g.s.nodes[i].node); ok {
			byValue[v] = append(byValue[v], i)
		} else {
			missing = append(missing, i)
		}
	}
	values := make([]string, 0, len(byValue))
	for v := range byValue {
		values = append(values, v)
	}
	slices.Sort(values)
	parts := make([][]int32, 0, len(values)+1)
	for _, v := range values {
		parts = append(parts, byValue[v])
	}
	if len(missing) > 0 {
		parts = append(parts, missing)
	}
	return parts
}

// place puts the group's next task on the best node of the branch that
// fits, and reports the node; false when no node of the branch fits.
func (g *groupCtx) place(b *branch) (int32, bool) {
	if b.leaf {
		h := &b.nodes
		for len(h.items) > 0 {
			i := h.items[0]
			if g.dynamic(i) == rejNone {
				g.apply(i)
				h.down(0)
				return i, true
			}
			h.pop()
		}
		return -1, false
	}
	for len(b.kids.items) > 0 {
		k := b.kids.items[0]
		if i, ok := g.place(k); ok {
			k.count++
			b.kids.down(0)
			return i, true
		}
		b.kids.pop()
	}
	return -1, false
}

// keepBest returns the k best of items (in no order) when that is much
// fewer than all of them, so a small group does not heapify every
// candidate. Its tasks never need more: a node that is not among the k
// best at the start can only be chosen once k better ones have been
// chosen, and only chosen nodes change their key or stop fitting.
func keepBest(items []int32, k int, less func(a, b int32) bool) []int32 {
	if 4*k >= len(items) {
		return items
	}
	// The k best so far, the worst of them on top; the rest of items is
	// only read, never written.
	best := minHeap[int32]{items: items[:k], less: func(a, b int32) bool { return less(b, a) }}
	best.init()
	for _, i := range items[k:] {
		if less(i, best.items[0]) {
			best.items[0] = i
			best.down(0)
		}
	}
	return best.items
}

// minHeap is a binary heap ordered by less; unlike container/heap it
// calls less directly, without an interface per comparison.
type minHeap[T any] struct {
	items []T
	less  func(a, b T) bool
}

func (h *minHeap[T]) init() {
	for i := len(h.items)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// down restores the order below position i after its key grew.
func (h *minHeap[T]) down(i int) {
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(h.items[r], h.items[l]) {
			m = r
		}
		if !h.less(h.items[m], h.items[i]) {
			return
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
}

// pop drops the smallest item.
func (h *minHeap[T]) pop() {
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	h.down(0)
}
