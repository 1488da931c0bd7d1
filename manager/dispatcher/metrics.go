package dispatcher

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Why a node was declared down: the label values of node-down events. They
// are what liveness tells apart, and no more, so the label stays bounded.
const (
	// CauseGossip: gossip declared the node dead and its session was gone
	// or silent (also a new leader's gossip view holding it as failed).
	CauseGossip = "gossip"
	// CauseLeave: the node left the gossip cluster on purpose.
	CauseLeave = "leave"
	// CauseSession: its session ended and no new one came within the grace
	// period.
	CauseSession = "session"
	// CauseReconnectWindow: it did not open a session with a new leader
	// within the reconnect window.
	CauseReconnectWindow = "reconnect_window"
	// CauseRestartHold: its agent announced a restart and was not back by
	// the hold's deadline.
	CauseRestartHold = "restart_hold"
)

// DownCauses lists every node-down cause.
var DownCauses = []string{CauseGossip, CauseLeave, CauseSession, CauseReconnectWindow, CauseRestartHold}

// Metrics are the dispatcher's Prometheus metrics. A manager makes one for
// its life and hands it to each dispatcher it builds (Config.Metrics); a
// nil *Metrics records nothing.
type Metrics struct {
	opened     prometheus.Counter
	heartbeats prometheus.Counter
	nodeDown   *prometheus.CounterVec
	// sessions is the table the open-sessions gauge reads.
	sessions atomic.Pointer[sessionTable]
}

// NewMetrics makes the dispatcher's metrics and registers them with reg
// (nil: kept but not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		opened: f.NewCounter(prometheus.CounterOpts{
			Name: "shoal_dispatcher_sessions_opened_total",
			Help: "Agent sessions this manager accepted while leading.",
		}),
		heartbeats: f.NewCounter(prometheus.CounterOpts{
			Name: "shoal_dispatcher_heartbeats_total",
			Help: "Heartbeats received from agents.",
		}),
		nodeDown: f.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_dispatcher_node_down_total",
			Help: "Nodes this manager declared down, by cause: gossip, leave, session, reconnect_window, restart_hold.",
		}, []string{"cause"}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shoal_dispatcher_sessions",
		Help: "Agent sessions open on this manager (only the leader holds any).",
	}, func() float64 {
		if t := m.sessions.Load(); t != nil {
			return float64(t.count())
		}
		return 0
	})
	for _, c := range DownCauses {
		m.nodeDown.WithLabelValues(c)
	}
	return m
}

func (m *Metrics) follow(t *sessionTable) {
	if m != nil {
		m.sessions.Store(t)
	}
}

func (m *Metrics) sessionOpened() {
	if m != nil {
		m.opened.Inc()
	}
}

func (m *Metrics) heartbeat() {
	if m != nil {
		m.heartbeats.Inc()
	}
}

func (m *Metrics) nodeDowned(cause string) {
	if m != nil {
		m.nodeDown.WithLabelValues(cause).Inc()
	}
}
