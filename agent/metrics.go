package agent

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/shoal-sched/shoal/api"
)

// Metrics are an agent's Prometheus metrics. A process makes one and hands
// it to the agent it runs (Config.Metrics); an agent built again in the
// same process (a restart in a test) reports to the same figures. A nil
// *Metrics records nothing.
type Metrics struct {
	starts     prometheus.Histogram
	reconnects prometheus.Counter
	connected  prometheus.Gauge
	// agent is the agent the state gauges read (nil: none built yet).
	agent atomic.Pointer[Agent]
}

// NewMetrics makes the agent's metrics and registers them with reg (nil:
// kept but not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		starts: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_agent_container_start_duration_seconds",
			Help:    "Time to create and start a task's container (the image pull and network setup not included).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		reconnects: f.NewCounter(prometheus.CounterOpts{
			Name: "shoal_agent_session_reconnects_total",
			Help: "Sessions with the leader established after the agent's first one (a leader change, a lost link).",
		}),
		connected: f.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_agent_session_connected",
			Help: "1 while the agent holds an established session with the leader, else 0.",
		}),
	}
	if reg != nil {
		reg.MustRegister(agentCollector{m})
	}
	return m
}

func (m *Metrics) follow(a *Agent) {
	if m != nil {
		m.agent.Store(a)
	}
}

func (m *Metrics) observeStart(d time.Duration) {
	if m != nil {
		m.starts.Observe(d.Seconds())
	}
}

// sessionUp notes an established session; first says whether it is the
// agent's first.
func (m *Metrics) sessionUp(first bool) {
	if m == nil {
		return
	}
	if !first {
		m.reconnects.Inc()
	}
	m.connected.Set(1)
}

func (m *Metrics) sessionDown() {
	if m != nil {
		m.connected.Set(0)
	}
}

var (
	descAgentTasks   = prometheus.NewDesc("shoal_agent_tasks", "Tasks this agent holds, by the state it reports.", []string{"state"}, nil)
	descGossipMember = prometheus.NewDesc("shoal_agent_gossip_members", "Members this agent's gossip sees alive (itself included); absent before it joined.", nil, nil)
)

// agentTaskStates are the states an agent reports.
var agentTaskStates = []api.TaskState{api.TaskAssigned, api.TaskAccepted, api.TaskPreparing, api.TaskStarting, api.TaskRunning,
	api.TaskComplete, api.TaskShutdown, api.TaskFailed, api.TaskRejected}

// agentCollector reads the agent's task records and gossip view at each
// scrape.
type agentCollector struct{ m *Metrics }

func (c agentCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAgentTasks
	ch <- descGossipMember
}

func (c agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.m.agent.Load()
	if a == nil {
		return
	}
	counts := a.store.counts()
	for _, s := range agentTaskStates {
		ch <- prometheus.MustNewConstMetric(descAgentTasks, prometheus.GaugeValue, float64(counts[s]), s.String())
	}
	a.mu.Lock()
	g := a.gossip
	a.mu.Unlock()
	if g != nil {
		ch <- prometheus.MustNewConstMetric(descGossipMember, prometheus.GaugeValue, float64(len(g.Members())))
	}
}
