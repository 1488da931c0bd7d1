package manager

import (
	"context"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/internal/metricshttp"
	"github.com/shoal-sched/shoal/manager/dispatcher"
	"github.com/shoal-sched/shoal/manager/orchestrator"
	"github.com/shoal-sched/shoal/raftstore"
)

// metrics are one manager's Prometheus registry and the figures of its
// parts. They are made once per Manager (not per Run, nor per leadership)
// and handed to each part through its config, so that counters survive a
// part being rebuilt and several managers in one process do not share
// figures.
type metrics struct {
	reg  *prometheus.Registry
	raft *raftstore.Metrics
	disp *dispatcher.Metrics
	orch *orchestrator.Metrics
	reqs *authz.RequestMetrics
	// ln is the bound --metrics-addr (nil: the metrics are not served).
	ln net.Listener
}

func newMetrics(m *Manager) *metrics {
	reg := metricshttp.NewRegistry()
	reg.MustRegister(stateCollector{m})
	return &metrics{
		reg:  reg,
		raft: raftstore.NewMetrics(reg),
		disp: dispatcher.NewMetrics(reg),
		orch: orchestrator.NewMetrics(reg),
		reqs: authz.NewRequestMetrics(reg),
	}
}

// Metrics is the manager's registry, for tests and embedders that gather
// it themselves.
func (m *Manager) Metrics() prometheus.Gatherer { return m.metrics.reg }

// MetricsAddr is the bound metrics address ("" when not served).
func (m *Manager) MetricsAddr() string {
	if m.metrics.ln == nil {
		return ""
	}
	return m.metrics.ln.Addr().String()
}

// serveMetrics serves /metrics until ctx ends, when Config.MetricsAddr
// asked for it.
func (m *Manager) serveMetrics(ctx context.Context) {
	if m.metrics.ln == nil {
		return
	}
	go func() {
		if err := metricshttp.Serve(ctx, m.metrics.ln, m.metrics.reg); err != nil {
			m.log.Error("metrics server stopped", "err", err)
		}
	}()
}

// stateCollector reports the counts of the manager's state at each scrape:
// every manager has the state, so followers report it too (a little
// behind the leader).
type stateCollector struct{ m *Manager }

var (
	descTasks    = prometheus.NewDesc("shoal_tasks", "Tasks in the state, by observed state.", []string{"state"}, nil)
	descNodes    = prometheus.NewDesc("shoal_nodes", "Nodes in the state, by status.", []string{"status"}, nil)
	descServices = prometheus.NewDesc("shoal_services", "Services in the state.", nil, nil)
)

// taskStates are the states a task can be observed in (TaskRemove is a
// desired state only).
var taskStates = []api.TaskState{api.TaskNew, api.TaskPending, api.TaskAssigned, api.TaskAccepted, api.TaskPreparing,
	api.TaskStarting, api.TaskRunning, api.TaskComplete, api.TaskShutdown, api.TaskFailed, api.TaskRejected, api.TaskOrphaned}

var nodeStatuses = []api.NodeStatus{api.NodeUnknown, api.NodeReady, api.NodeRestarting, api.NodeDown}

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTasks
	ch <- descNodes
	ch <- descServices
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	node := c.m.Raft()
	if node == nil {
		return
	}
	v := node.State().Read()
	tasks := v.TaskCounts()
	for _, s := range taskStates {
		ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(tasks[s]), s.String())
	}
	nodes := map[api.NodeStatus]int{}
	for _, n := range v.Nodes() {
		nodes[n.Status]++
	}
	for _, s := range nodeStatuses {
		ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(nodes[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(descServices, prometheus.GaugeValue, float64(len(v.Services())))
}
