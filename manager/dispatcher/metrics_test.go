package dispatcher_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/dispatcher"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/membership"
)

// downCounts reads shoal_dispatcher_node_down_total by cause from reg.
func downCounts(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != "shoal_dispatcher_node_down_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			out[label(m, "cause")] = m.GetCounter().GetValue()
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func gauge(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			m := f.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no single-valued metric %s", name)
	return 0
}

// TestNodeDownMetricsByCause: a node whose agent died and that gossip then
// declares dead goes down at once and is counted with cause gossip; a node
// whose session ended and did not come back within the grace period is
// counted with cause session; a node that left gossip is counted with
// cause leave. Every cause starts at zero, so a dashboard sees each one.
func TestNodeDownMetricsByCause(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics := dispatcher.NewMetrics(reg)
	// A grace period long enough that a gossip verdict comes first.
	const grace = 2 * time.Second
	s := newSingle(t, grace, func(c *dispatcher.Config) { c.Metrics = metrics })
	agents := addReadyAgents(t, s, 3)
	if got := gauge(t, reg, "shoal_dispatcher_sessions"); got != 3 {
		t.Errorf("shoal_dispatcher_sessions = %v with 3 agents in session, want 3", got)
	}
	want := map[string]float64{}
	for _, c := range dispatcher.DownCauses {
		want[c] = 0
	}
	check := func(step string) {
		t.Helper()
		managertest.WaitFor(t, 5*time.Second, func() error {
			if got := downCounts(t, reg); fmt.Sprint(got) != fmt.Sprint(want) {
				return fmt.Errorf("%s: node down counts %v, want %v", step, got, want)
			}
			return nil
		})
	}
	check("start")

	gossipDead, sessionGone, leaver := agents[0], agents[1], agents[2]
	id := gossipDead.nodeID()
	meta := memberOf(gossipDead)
	gossipDead.kill()
	observeUntilDown(t, s, id, membership.Event{Type: membership.EventFail, Meta: meta})
	want[dispatcher.CauseGossip] = 1
	check("gossip declared a node without a session dead")

	sid := sessionGone.nodeID()
	sessionGone.kill()
	waitNode(t, s, sid, api.NodeDown)
	want[dispatcher.CauseSession] = 1
	check("a session ended for the grace period")

	lmeta := memberOf(leaver)
	lmeta.Leaving = true
	observeUntilDown(t, s, leaver.nodeID(), membership.Event{Type: membership.EventLeave, Meta: lmeta})
	want[dispatcher.CauseLeave] = 1
	check("a node left")

	if got := gauge(t, reg, "shoal_dispatcher_heartbeats_total"); got == 0 {
		t.Error("shoal_dispatcher_heartbeats_total is 0 after agents held sessions")
	}
}

// observeUntilDown feeds ev to the dispatcher until node id is down. A
// dispatcher drops gossip events until its liveness check has taken over
// as the leader, which on a loaded machine may come after the agents
// registered; an event about a node already down changes nothing.
func observeUntilDown(t *testing.T, s *single, id string, ev membership.Event) {
	t.Helper()
	managertest.WaitFor(t, 10*time.Second, func() error {
		if n := s.state.Read().Node(id); n != nil && n.Status == api.NodeDown {
			return nil
		}
		s.d.ObserveMember(ev)
		return fmt.Errorf("node %s not down yet", id)
	})
}
