package scheduler

import (
	"math"
	"math/bits"

	"github.com/shoal-sched/shoal/api"
)

// Holding is what one task holds on the node it is bound to: its
// reservation and host ports while it has not ended, and a place in the
// node's task count (spread, max per node) while its desired state is at
// most running. It is the one rule by which Schedule counts the tasks
// listed on a node, whether it sums them itself or the caller keeps the
// sum in a Load.
type Holding struct {
	Reserved api.Resources
	Ports    []string
	Counts   bool
}

// Holds returns what t, running spec, holds on its node; false when it
// holds nothing (it has ended).
func Holds(t *api.Task, spec *api.ServiceSpec) (Holding, bool) {
	if t == nil || t.Status.State.Terminal() {
		return Holding{}, false
	}
	return Holding{Reserved: reservation(spec), Ports: hostPorts(spec), Counts: t.DesiredState <= api.TaskRunning}, true
}

// Load is the sum of the holdings of one node's tasks. Add and Remove keep
// it as tasks come and go, so that a caller that follows the changes of
// its tasks need not list every task of every node on each pass. Remove
// undoes Add exactly: the reservations are summed without saturating (a
// saturated sum could not be taken back), and saturate only in Free.
type Load struct {
	cpu, mem wideSum
	// Tasks counts the holdings that count toward spread.
	Tasks int
	// Ports counts the holdings of each host port ("8080/tcp").
	Ports map[string]int
}

// Add counts h on the node.
func (l *Load) Add(h Holding) {
	l.cpu.add(h.Reserved.NanoCPUs)
	l.mem.add(h.Reserved.MemoryBytes)
	if h.Counts {
		l.Tasks++
	}
	for _, p := range h.Ports {
		if l.Ports == nil {
			l.Ports = make(map[string]int)
		}
		l.Ports[p]++
	}
}

// Remove takes back an h that Add counted.
func (l *Load) Remove(h Holding) {
	l.cpu.sub(h.Reserved.NanoCPUs)
	l.mem.sub(h.Reserved.MemoryBytes)
	if h.Counts {
		l.Tasks--
	}
	for _, p := range h.Ports {
		if l.Ports[p]--; l.Ports[p] <= 0 {
			delete(l.Ports, p)
		}
	}
}

// Clone returns a copy that changes independently of l.
func (l *Load) Clone() *Load {
	c := *l
	if l.Ports != nil {
		c.Ports = make(map[string]int, len(l.Ports))
		for p, n := range l.Ports {
			c.Ports[p] = n
		}
	}
	return &c
}

// Free is what capacity leaves free under the load, saturating as
// api.Resources.Sub does.
func (l *Load) Free(capacity api.Resources) api.Resources {
	return api.Resources{NanoCPUs: l.cpu.from(capacity.NanoCPUs), MemoryBytes: l.mem.from(capacity.MemoryBytes)}
}

// wideSum is a sum of non-negative int64s in 128 bits: it cannot overflow
// for any number of terms a pass can hold.
type wideSum struct{ hi, lo uint64 }

func (w *wideSum) add(v int64) {
	var c uint64
	w.lo, c = bits.Add64(w.lo, uint64(max(v, 0)), 0)
	w.hi += c
}

func (w *wideSum) sub(v int64) {
	var b uint64
	w.lo, b = bits.Sub64(w.lo, uint64(max(v, 0)), 0)
	w.hi -= b
}

// from returns c minus the sum, saturated to the int64 range: what
// subtracting each term from c in turn with api.Resources.Sub gives, as
// the terms are not negative.
func (w wideSum) from(c int64) int64 {
	switch {
	case w.hi == 0 && w.lo <= math.MaxInt64:
		return api.Resources{NanoCPUs: c}.Sub(api.Resources{NanoCPUs: int64(w.lo)}).NanoCPUs
	case w.hi == 0 && c >= 0 && w.lo <= uint64(c)+1<<63:
		// The sum is at least 2^63 and c - sum is still in range.
		return int64(uint64(c) - w.lo)
	}
	return math.MinInt64
}
