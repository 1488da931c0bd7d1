package orchestrator

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// TestSchedulerMetrics: six replicas of one CPU on a node of four: four
// placements are counted (each with its delay from creation), and the two
// that fit nowhere show as pending with reason no_suitable_node.
func TestSchedulerMetrics(t *testing.T) {
	h := newHarness(t)
	h.stopOrchestrator()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	h.metrics = m
	h.startOrchestrator()
	h.addNode("n1", nil)
	spec := replicated("big", 6)
	spec.Resources.Reservations.NanoCPUs = 1e9
	svc := h.createService(spec)
	h.waitFor("4 assigned, 2 pending", func(v *raftstore.View) string {
		ts := live(v, svc.ID)
		if a, p := count(ts, inState(api.TaskAssigned)), count(ts, inState(api.TaskPending)); a != 4 || p != 2 {
			return fmt.Sprintf("%d assigned and %d pending, want 4 and 2", a, p)
		}
		if got := read(m.pending.WithLabelValues(pendingNoNode)); got != 2 {
			return fmt.Sprintf("pending{reason=no_suitable_node} = %v, want 2", got)
		}
		// The counters move once the pass's commit returns, which may be
		// after the state already shows the assignments.
		if got := read(m.placements); got != 4 {
			return fmt.Sprintf("placements = %v, want 4", got)
		}
		var d dto.Metric
		if err := m.delay.Write(&d); err != nil || d.GetHistogram().GetSampleCount() != 4 {
			return fmt.Sprintf("scheduling delay: %d observations (%v), want 4", d.GetHistogram().GetSampleCount(), err)
		}
		if got := read(m.passes.WithLabelValues("ok")); got < 1 {
			return fmt.Sprintf("passes{result=ok} = %v, want at least 1", got)
		}
		return ""
	})
	for _, r := range pendingReasons {
		if r != pendingNoNode && read(m.pending.WithLabelValues(r)) != 0 {
			t.Errorf("pending{reason=%s} = %v, want 0", r, read(m.pending.WithLabelValues(r)))
		}
	}
}

// read is the value of one counter or gauge.
func read(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue() + m.GetGauge().GetValue()
}
