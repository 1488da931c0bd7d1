package raftstore

import (
	"io"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are a Raft member's Prometheus metrics. A process makes one and
// hands it to every Node it opens (Config.Metrics): the figures outlive a
// member that is closed and opened again, and two members in one process
// (tests) each report to their own registry. A nil *Metrics records
// nothing.
type Metrics struct {
	commit          prometheus.Histogram
	fsmApply        prometheus.Histogram
	fsmEntries      prometheus.Counter
	snapshotBytes   prometheus.Gauge
	snapshotPersist prometheus.Histogram
	snapshotRestore prometheus.Histogram
	leaderChanges   prometheus.Counter
	// node is the open member the index gauges read (nil: none open).
	node atomic.Pointer[Node]
}

// NewMetrics makes the Raft metrics and registers them with reg (nil:
// they are kept but not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		commit: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_raft_commit_duration_seconds",
			Help:    "Time from proposing a command on the leader to its commit and apply (successful applies only).",
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 14),
		}),
		fsmApply: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_raft_fsm_apply_duration_seconds",
			Help:    "Time the state machine takes to apply one batch of committed entries.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}),
		fsmEntries: f.NewCounter(prometheus.CounterOpts{
			Name: "shoal_raft_fsm_applied_entries_total",
			Help: "Committed log entries the state machine applied.",
		}),
		snapshotBytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_raft_snapshot_size_bytes",
			Help: "Size of the last snapshot this member wrote (before encryption at rest).",
		}),
		snapshotPersist: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_raft_snapshot_persist_duration_seconds",
			Help:    "Time to write one snapshot of the state.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		snapshotRestore: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_raft_snapshot_restore_duration_seconds",
			Help:    "Time to restore the state from one snapshot.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		leaderChanges: f.NewCounter(prometheus.CounterOpts{
			Name: "shoal_raft_leader_changes_total",
			Help: "Times this member saw another member (or itself) become the leader.",
		}),
	}
	if reg != nil {
		reg.MustRegister(indexCollector{m})
	}
	return m
}

func (m *Metrics) setNode(n *Node) {
	if m != nil {
		m.node.Store(n)
	}
}

// clearNode forgets n if it is still the member the gauges read.
func (m *Metrics) clearNode(n *Node) {
	if m != nil {
		m.node.CompareAndSwap(n, nil)
	}
}

func (m *Metrics) observeCommit(d time.Duration) {
	if m != nil {
		m.commit.Observe(d.Seconds())
	}
}

func (m *Metrics) observeApply(entries int, d time.Duration) {
	if m != nil {
		m.fsmApply.Observe(d.Seconds())
		m.fsmEntries.Add(float64(entries))
	}
}

func (m *Metrics) observeSnapshot(bytes int64, d time.Duration) {
	if m != nil {
		m.snapshotBytes.Set(float64(bytes))
		m.snapshotPersist.Observe(d.Seconds())
	}
}

func (m *Metrics) observeRestore(d time.Duration) {
	if m != nil {
		m.snapshotRestore.Observe(d.Seconds())
	}
}

// indexCollector reports the open member's indexes, term and role at each
// scrape; while no member is open it reports nothing rather than zeros.
type indexCollector struct{ m *Metrics }

var (
	descApplied   = prometheus.NewDesc("shoal_raft_applied_index", "Last log index the state machine applied.", nil, nil)
	descLast      = prometheus.NewDesc("shoal_raft_last_log_index", "Last index in this member's log.", nil, nil)
	descCommitted = prometheus.NewDesc("shoal_raft_commit_index", "Last log index known committed.", nil, nil)
	descTerm      = prometheus.NewDesc("shoal_raft_term", "Current Raft term.", nil, nil)
	descLeader    = prometheus.NewDesc("shoal_raft_is_leader", "1 while this member is the Raft leader, else 0.", nil, nil)
)

func (c indexCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descApplied, descLast, descCommitted, descTerm, descLeader} {
		ch <- d
	}
}

func (c indexCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.m.node.Load()
	if n == nil {
		return
	}
	s := n.Stats()
	leader := 0.0
	if s.State == "leader" {
		leader = 1
	}
	for _, v := range []struct {
		d *prometheus.Desc
		v float64
	}{{descApplied, float64(s.AppliedIndex)}, {descLast, float64(s.LastIndex)},
		{descCommitted, float64(s.CommitIndex)}, {descTerm, float64(s.Term)}, {descLeader, leader}} {
		ch <- prometheus.MustNewConstMetric(v.d, prometheus.GaugeValue, v.v)
	}
}

// watchLeaders counts the leader changes n's Raft reports until stop is
// closed; it deregisters its observer before it returns.
func (n *Node) watchLeaders(stop <-chan struct{}) (done <-chan struct{}) {
	obs := make(chan raft.Observation, 16)
	o := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(o)
	out := make(chan struct{})
	go func() {
		defer close(out)
		defer n.raft.DeregisterObserver(o)
		var last raft.ServerID
		for {
			select {
			case <-stop:
				return
			case ob := <-obs:
				// raft reports losing a leader as an empty one: only a
				// new leader counts.
				if id := ob.Data.(raft.LeaderObservation).LeaderID; id != "" && id != last {
					last = id
					if n.metrics != nil {
						n.metrics.leaderChanges.Inc()
					}
				}
			}
		}
	}()
	return out
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
