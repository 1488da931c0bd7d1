package membership

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/poll"
)

// waitTimeout bounds every wait on gossip. It is generous because the race
// detector and a busy machine slow memberlist down; tests never assert speed
// (BenchmarkFailureDetection measures it).
const waitTimeout = 15 * time.Second

var gossipDebug = flag.Bool("gossip-debug", false, "log memberlist's debug output in tests")

// testLogger sends logs to the test output until the test ends; memberlist
// goroutines may still log while a member shuts down.
func testLogger(t testing.TB) *slog.Logger {
	w := &testLogWriter{out: t.Output()}
	t.Cleanup(w.stop)
	level := slog.LevelInfo
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelWarn // keep benchmark output to the figures
	}
	if *gossipDebug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testLogWriter struct {
	mu      sync.Mutex
	out     io.Writer
	stopped bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return len(p), nil
	}
	return w.out.Write(p)
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

func testMeta(name string) Meta {
	return Meta{
		NodeID:      name,
		Hostname:    name + ".test",
		Role:        api.RoleWorker,
		GRPCAddr:    "127.0.0.1:4243",
		NanoCPUs:    1_000_000_000,
		MemoryBytes: 1 << 30,
		Labels:      map[string]string{"name": name},
	}
}

func testConfig(t testing.TB, name string, join ...string) Config {
	return Config{
		NodeName: name,
		BindAddr: "127.0.0.1:0",
		Join:     join,
		Meta:     testMeta(name),
		Logger:   testLogger(t).With("test_node", name),
	}
}

// node is a started Member whose events are recorded by a reader goroutine.
type node struct {
	*Member
	rec *recorder
	// drained is closed when the reader saw Events() close.
	drained chan struct{}
}

func startNode(t testing.TB, cfg Config) *node {
	t.Helper()
	m, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start %s: %v", cfg.NodeName, err)
	}
	rec := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range m.Events() {
			rec.add(ev)
		}
	}()
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close %s: %v", cfg.NodeName, err)
		}
		<-done
	})
	return &node{Member: m, rec: rec, drained: done}
}

// startCluster starts n members named n0..n(n-1), each joining n0, and
// waits until every one sees all of them.
func startCluster(t testing.TB, n int) []*node {
	t.Helper()
	nodes := []*node{startNode(t, testConfig(t, "n0"))}
	for i := 1; i < n; i++ {
		nodes = append(nodes, startNode(t, testConfig(t, fmt.Sprintf("n%d", i), nodes[0].Addr())))
	}
	waitConverged(t, nodes, n)
	return nodes
}

func waitConverged(t testing.TB, nodes []*node, n int) {
	t.Helper()
	for _, nd := range nodes {
		waitFor(t, fmt.Sprintf("%s sees %d members", nd.LocalMeta().NodeID, n), func() bool {
			return len(nd.Members()) == n
		}, func() string {
			return fmt.Sprintf("it sees %v; stats %+v; events %v", memberIDs(nd.Members()), nd.Stats(), nd.rec.summary())
		})
	}
}

// waitFor polls cond until it holds or waitTimeout passes; explain, if
// given, describes the state on failure.
func waitFor(t testing.TB, what string, cond func() bool, explain ...func() string) {
	t.Helper()
	poll.Until(t, waitTimeout, func() error {
		if cond() {
			return nil
		}
		var why []string
		for _, e := range explain {
			why = append(why, e())
		}
		return fmt.Errorf("waiting until %s %v", what, why)
	})
}

type recorder struct {
	mu     sync.Mutex
	events []Event
	times  []time.Time // when each event was read
}

func (r *recorder) add(ev Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.times = append(r.times, time.Now())
	r.mu.Unlock()
}

// firstAfter returns when the first event of typ about id read after t0 was read.
func (r *recorder) firstAfter(id string, typ EventType, t0 time.Time) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ev := range r.events {
		if ev.Meta.NodeID == id && ev.Type == typ && r.times[i].After(t0) {
			return r.times[i], true
		}
	}
	return time.Time{}, false
}

// count returns how many events of typ were read.
func (r *recorder) count(typ EventType) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// about returns the recorded events about node id.
func (r *recorder) about(id string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, ev := range r.events {
		if ev.Meta.NodeID == id {
			out = append(out, ev)
		}
	}
	return out
}

func (r *recorder) has(id string, typ EventType) bool {
	return slices.ContainsFunc(r.about(id), func(ev Event) bool { return ev.Type == typ })
}

func eventTypes(evs []Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type.String())
	}
	return out
}

func memberIDs(ms []Meta) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.NodeID)
	}
	return out
}

func (r *recorder) summary() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		out = append(out, ev.Type.String()+":"+ev.Meta.NodeID)
	}
	return out
}
