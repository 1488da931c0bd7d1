package orchestrator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/shoal-sched/shoal/raftstore"
)

// Why a task waits for a node, as a bounded label: the pending reasons
// themselves carry task IDs and figures.
const (
	pendingRestartDelay = "restart_delay"
	pendingStopFirst    = "stop_first"
	pendingNetwork      = "network"
	pendingDependsOn    = "depends_on"
	pendingNoNode       = "no_suitable_node"
	pendingRefused      = "assignment_refused"
)

var pendingReasons = []string{pendingRestartDelay, pendingStopFirst, pendingNetwork, pendingDependsOn, pendingNoNode, pendingRefused}

// Metrics are the orchestrator's and scheduler's Prometheus metrics. A
// manager makes one for its life and hands it to each orchestrator it
// builds (Options.Metrics); a nil *Metrics records nothing.
type Metrics struct {
	passes     *prometheus.CounterVec
	passTime   prometheus.Histogram
	placements prometheus.Counter
	pending    *prometheus.GaugeVec
	delay      prometheus.Histogram
}

// NewMetrics makes the metrics and registers them with reg (nil: kept but
// not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		passes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_orchestrator_passes_total",
			Help: "Reconciliation passes the leader ran, by result (ok or error).",
		}, []string{"result"}),
		passTime: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_orchestrator_pass_duration_seconds",
			Help:    "Time of one reconciliation pass, its commits included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		placements: f.NewCounter(prometheus.CounterOpts{
			Name: "shoal_scheduler_placements_total",
			Help: "Tasks assigned to a node (committed, not refused).",
		}),
		pending: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "shoal_scheduler_pending_tasks",
			Help: "Tasks waiting for a node at the last pass, by reason.",
		}, []string{"reason"}),
		delay: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_scheduler_delay_seconds",
			Help:    "Time from a task's creation to its assignment to a node.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	for _, r := range []string{"ok", "error"} {
		m.passes.WithLabelValues(r)
	}
	for _, r := range pendingReasons {
		m.pending.WithLabelValues(r)
	}
	return m
}

func (m *Metrics) observePass(d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.passes.WithLabelValues(result).Inc()
	m.passTime.Observe(d.Seconds())
}

// setPending sets the pending gauge to the counts of one pass; reasons it
// did not see are zero.
func (m *Metrics) setPending(counts map[string]int) {
	if m == nil {
		return
	}
	for _, r := range pendingReasons {
		m.pending.WithLabelValues(r).Set(float64(counts[r]))
	}
}

// observeAssigned counts the assignments of a committed entry that were
// not refused, and their tasks' time from creation.
func (m *Metrics) observeAssigned(e entry, refused []raftstore.PendingReason, at time.Time) {
	if m == nil {
		return
	}
	no := make(map[string]bool, len(refused))
	for _, r := range refused {
		no[r.TaskID] = true
	}
	for _, u := range e.units {
		for i, a := range u.assigns {
			if no[a.TaskID] {
				continue
			}
			m.placements.Inc()
			if c := u.created[i]; !c.IsZero() {
				m.delay.Observe(at.Sub(c).Seconds())
			}
		}
	}
}
