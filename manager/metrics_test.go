package manager_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// scrape fetches addr's /metrics over loopback and parses it as Prometheus
// text.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape %s: status %s, content type %q; want 200 and text/plain", addr, resp.Status, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: not Prometheus text: %v", addr, err)
	}
	return fams
}

// value sums the samples of family name whose labels include want
// (counter, gauge, or a histogram's count); ok is false without any.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	sum, found := 0.0, false
next:
	for _, m := range f.GetMetric() {
		for k, v := range want {
			if labelOf(m, k) != v {
				continue next
			}
		}
		found = true
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
	}
	return sum, found
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func gatherAll(t *testing.T, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// meteredAgent runs an agent with gossip on a fake runtime, its metrics in
// reg, until stop is called or the test ends.
func meteredAgent(t *testing.T, c *managertest.Cluster, reg prometheus.Registerer, rt *fake.Runtime) (a *agent.Agent, stop func()) {
	t.Helper()
	dir := t.TempDir()
	a, err := agent.New(agent.Config{
		DataDir: dir, Credentials: c.AgentCredentials(dir), Join: []string{c.Addr(0)}, AdvertiseAddr: "127.0.0.1:0",
		GossipAddr: "127.0.0.1:0", Hostname: "metered", Runtime: rt, Resources: api.Resources{NanoCPUs: 8e9, MemoryBytes: 8 << 30},
		HeartbeatInterval: 200 * time.Millisecond, StatusDelay: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: agent.NewMetrics(reg),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop within 30s")
		}
	}
	t.Cleanup(stop)
	return a, stop
}

// TestMetricsEndpoint: a manager with a metrics address serves Prometheus
// text whose figures follow what happens: Raft's role and indexes, calls
// timed by method and code (a refused call with its code), placements and
// their delay, sessions, task counts, and a killed node counted down with
// the cause its status message gives. The agent's own figures follow its
// tasks and session. The sample dashboard names only metrics these export.
func TestMetricsEndpoint(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{Edit: func(cfg *manager.Config) { cfg.MetricsAddr = "127.0.0.1:0" }})
	m := c.Manager(0)
	addr := m.MetricsAddr()
	if addr == "" {
		t.Fatal("MetricsAddr is empty with Config.MetricsAddr set")
	}
	fams := scrape(t, addr)
	for name, want := range map[string]float64{"shoal_raft_is_leader": 1, "shoal_raft_leader_changes_total": 1} {
		if got, _ := value(fams, name, nil); got != want {
			t.Errorf("%s = %v on the only manager, want %v", name, got, want)
		}
	}
	if got, _ := value(fams, "shoal_raft_applied_index", nil); got < 1 {
		t.Errorf("shoal_raft_applied_index = %v after start-up writes", got)
	}
	if _, ok := value(fams, "process_resident_memory_bytes", nil); !ok {
		t.Error("no process_resident_memory_bytes: the process collector is missing")
	}

	agentReg := prometheus.NewRegistry()
	rt := fake.New()
	rt.ScriptImage("busybox:latest", fake.Script{})
	a, stopAgent := meteredAgent(t, c, agentReg, rt)
	cl := c.Client(0)
	if _, err := cl.CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: spec("web")}); err != nil {
		t.Fatal(err)
	}
	_, err := cl.CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{Name: "bad name!", Image: "x"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("create with a bad name: %v, want InvalidArgument", err)
	}
	c.WaitFor(waitTimeout, func() error {
		fams = scrape(t, addr)
		if n, _ := value(fams, "shoal_tasks", map[string]string{"state": "running"}); n != 2 {
			return fmt.Errorf("shoal_tasks{state=running} = %v, want 2", n)
		}
		if n, _ := value(gatherAll(t, agentReg), "shoal_agent_tasks", map[string]string{"state": "running"}); n != 2 {
			return fmt.Errorf("shoal_agent_tasks{state=running} = %v, want 2", n)
		}
		return nil
	})
	for _, w := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"shoal_api_request_duration_seconds", map[string]string{"method": "shoal.v1.Control/CreateService", "code": "OK"}, 1},
		{"shoal_api_request_duration_seconds", map[string]string{"method": "shoal.v1.Control/CreateService", "code": "InvalidArgument"}, 1},
		{"shoal_scheduler_placements_total", nil, 2},
		{"shoal_scheduler_delay_seconds", nil, 2},
		{"shoal_orchestrator_passes_total", map[string]string{"result": "ok"}, 1},
		{"shoal_dispatcher_sessions", nil, 1},
		{"shoal_dispatcher_sessions_opened_total", nil, 1},
		{"shoal_nodes", map[string]string{"status": "ready"}, 1},
		{"shoal_services", nil, 1},
	} {
		if got, _ := value(fams, w.name, w.labels); got < w.min {
			t.Errorf("%s%v = %v, want at least %v", w.name, w.labels, got, w.min)
		}
	}
	if got, _ := value(fams, "shoal_api_request_duration_seconds", map[string]string{"method": "shoal.v1.Control/CreateService"}); got != 2 {
		t.Errorf("CreateService timed %v times over all codes, want 2", got)
	}
	ag := gatherAll(t, agentReg)
	if got, _ := value(ag, "shoal_agent_container_start_duration_seconds", nil); got != 2 {
		t.Errorf("agent shoal_agent_container_start_duration_seconds counts %v starts, want 2", got)
	}
	// On a loaded machine gossip may declare the node dead for a moment,
	// and its agent then opens a new session: wait for one to be up.
	c.WaitFor(waitTimeout, func() error {
		ag = gatherAll(t, agentReg)
		if got, _ := value(ag, "shoal_agent_session_connected", nil); got != 1 {
			return fmt.Errorf("agent shoal_agent_session_connected = %v, want 1", got)
		}
		if got, _ := value(scrape(t, addr), "shoal_dispatcher_heartbeats_total", nil); got == 0 {
			return fmt.Errorf("shoal_dispatcher_heartbeats_total = 0 with an agent in session")
		}
		return nil
	})
	agentFams := ag

	// Counted from here: a false failure earlier (see above) is a node
	// down too.
	fams = scrape(t, addr)
	before := map[string]float64{}
	for _, cause := range []string{"gossip", "session", "leave"} {
		before[cause], _ = value(fams, "shoal_dispatcher_node_down_total", map[string]string{"cause": cause})
	}
	nodeID := a.NodeID()
	stopAgent()
	var msg string
	c.WaitFor(waitTimeout, func() error {
		n := m.Raft().State().Read().Node(nodeID)
		if n == nil || n.Status != api.NodeDown {
			return fmt.Errorf("node %s is not down yet", nodeID)
		}
		msg = n.StatusMessage
		return nil
	})
	cause := "session"
	switch {
	case strings.Contains(msg, "gossip"):
		cause = "gossip"
	case strings.Contains(msg, "left"):
		cause = "leave"
	}
	// The counter moves once the commit that downed the node has returned,
	// which may be after the state shows it down.
	c.WaitFor(waitTimeout, func() error {
		fams = scrape(t, addr)
		if got, _ := value(fams, "shoal_dispatcher_node_down_total", map[string]string{"cause": cause}); got-before[cause] != 1 {
			return fmt.Errorf("node down with message %q: shoal_dispatcher_node_down_total{cause=%q} went from %v to %v, want one more",
				msg, cause, before[cause], got)
		}
		return nil
	})
	checkDashboard(t, fams, agentFams)
}

// checkDashboard parses the sample Grafana dashboard and checks that every
// expression names only metrics that the manager or the agent exports.
func checkDashboard(t *testing.T, exported ...map[string]*dto.MetricFamily) {
	t.Helper()
	b, err := os.ReadFile("../deploy/grafana/shoal.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	known := func(name string) bool {
		for _, fams := range exported {
			for _, n := range []string{name, strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")} {
				if fams[n] != nil {
					return true
				}
			}
		}
		return false
	}
	metric := regexp.MustCompile(`\bshoal_[a-z_]+\b`)
	exprs := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs++
			names := metric.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("dashboard panel %q: expression %q names no shoal metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				if !known(n) {
					t.Errorf("dashboard panel %q: %s is not exported", p.Title, n)
				}
			}
		}
	}
	if exprs == 0 {
		t.Error("dashboard has no expressions")
	}
}
