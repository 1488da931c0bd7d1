package dispatcher_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/dispatcher"
	"github.com/shoal-sched/shoal/manager/orchestrator"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// testLogger discards logs unless SHOAL_TEST_LOG is set.
func testLogger() *slog.Logger {
	var w io.Writer = io.Discard
	if os.Getenv("SHOAL_TEST_LOG") != "" {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// single is one dispatcher over a state changed without consensus (a
// LocalApplier), served over real gRPC on loopback, with agents that run
// fake runtimes; the real orchestrator places tasks (startOrchestrator).
type single struct {
	t     testing.TB
	state *raftstore.State
	apply raftstore.Applier
	d     *dispatcher.Dispatcher
	addr  string
	// started is when the dispatcher started leading.
	started time.Time
	grace   time.Duration
	// edits change every dispatcher's config before it starts.
	edits []func(*dispatcher.Config)

	leadMu     sync.Mutex
	leadership leadership

	mu     sync.Mutex
	agents []*testAgent

	histMu  sync.Mutex
	history map[string][]*api.Node // every version of each node
}

func newSingle(t testing.TB, grace time.Duration, edits ...func(*dispatcher.Config)) *single {
	t.Helper()
	state := raftstore.NewState()
	s := &single{t: t, state: state, apply: raftstore.NewLocalApplier(state), history: map[string][]*api.Node{}, edits: edits}
	events, unsubscribe := state.Subscribe(1 << 16)
	t.Cleanup(unsubscribe)
	go func() {
		for batch := range events {
			s.histMu.Lock()
			for _, ev := range batch {
				if ev.Node != nil {
					s.history[ev.Node.ID] = append(s.history[ev.Node.ID], ev.Node)
				}
			}
			s.histMu.Unlock()
		}
	}()
	s.grace = grace
	t.Cleanup(s.stopAgents)
	s.started = time.Now()
	s.d, s.addr = s.serveDispatcher(
		func() bool { return s.lead(func(l *leadership) bool { return l.isLeader == nil || l.isLeader() }) },
		func() string {
			var addr string
			s.lead(func(l *leadership) bool {
				addr = s.addr
				if l.leaderAddr != nil {
					addr = l.leaderAddr()
				}
				return true
			})
			return addr
		})
	return s
}

// leadership replaces the first dispatcher's view of who leads (default:
// itself).
type leadership struct {
	isLeader   func() bool
	leaderAddr func() string
}

func (s *single) lead(f func(l *leadership) bool) bool {
	s.leadMu.Lock()
	defer s.leadMu.Unlock()
	return f(&s.leadership)
}

func (s *single) setLeadership(isLeader func() bool, leaderAddr func() string) {
	s.leadMu.Lock()
	defer s.leadMu.Unlock()
	s.leadership = leadership{isLeader: isLeader, leaderAddr: leaderAddr}
}

// serveDispatcher runs one more dispatcher over the state, on its own
// loopback port, until the test ends.
func (s *single) serveDispatcher(isLeader func() bool, leaderAddr func() string) (*dispatcher.Dispatcher, string) {
	d, addr, run := s.serveIdleDispatcher(isLeader, leaderAddr)
	run()
	return d, addr
}

// serveIdleDispatcher serves one more dispatcher whose leader duties (Run)
// start only when run is called, as a real manager starts them when it
// becomes the leader.
func (s *single) serveIdleDispatcher(isLeader func() bool, leaderAddr func() string) (*dispatcher.Dispatcher, string, func()) {
	t := s.t
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := dispatcher.Config{
		State: s.state, Applier: s.apply, GracePeriod: s.grace, Logger: testLogger(),
		IsLeader: isLeader, LeaderAddr: leaderAddr,
	}
	for _, e := range s.edits {
		e(&cfg)
	}
	d := dispatcher.New(cfg)
	gs := grpc.NewServer(shoalpb.ServerOptions()...)
	shoalpb.RegisterDispatcherServer(gs, d)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	var once sync.Once
	run := func() {
		once.Do(func() {
			ctx, cancel := context.WithCancel(t.Context())
			runDone := make(chan error, 1)
			go func() { runDone <- d.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-runDone; err != nil {
					t.Errorf("dispatcher Run: %v", err)
				}
			})
		})
	}
	return d, lis.Addr().String(), run
}

// testAgent is one agent with its own fake runtime and data dir, which
// survive kills and restarts (as containerd and the disk would).
type testAgent struct {
	t      testing.TB
	name   string
	rt     *fake.Runtime
	dir    string
	join   []string
	gossip bool
	leave  bool // leave gossip gracefully when stopped
	// hold, if set, is the restart hold the agent announces when stopped
	// (kill then stops it as systemctl restart would: SIGTERM).
	hold time.Duration
	// creds is the agent's certificate (nil: plaintext, for the dispatcher
	// served without TLS).
	creds *pki.Credentials
	// dp, if set, is the agent's data plane.
	dp agent.DataPlane

	mu     sync.Mutex
	a      *agent.Agent
	cancel context.CancelFunc
	done   chan error
}

func newTestAgent(t testing.TB, name string, join []string) *testAgent {
	ta := &testAgent{t: t, name: name, rt: fake.New(), dir: t.TempDir(), join: join}
	// Registered after TempDir: the agent stops before its dir goes.
	t.Cleanup(ta.kill)
	ta.rt.ScriptImage("img", fake.Script{Logs: []string{"hello from " + name}})
	return ta
}

func (ta *testAgent) start() {
	ta.t.Helper()
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if ta.a != nil {
		ta.t.Fatalf("agent %s already runs", ta.name)
	}
	cfg := agent.Config{
		DataDir: ta.dir, Join: ta.join, AdvertiseAddr: "127.0.0.1:0", Hostname: ta.name,
		Runtime: ta.rt, Resources: api.Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30},
		RestartHold: ta.hold, Logger: testLogger().With("test_agent", ta.name),
		Credentials: ta.creds, Plaintext: ta.creds == nil, DataPlane: ta.dp,
	}
	if ta.gossip {
		cfg.GossipAddr, cfg.LeaveOnStop = "127.0.0.1:0", ta.leave
	}
	a, err := agent.New(cfg)
	if err != nil {
		ta.t.Fatalf("agent %s: %v", ta.name, err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ta.t.Context()))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	ta.a, ta.cancel, ta.done = a, cancel, done
}

// kill stops the agent as abruptly as an in-process agent can stop: its
// session and gossip go silent, its containers keep running.
func (ta *testAgent) kill() {
	ta.t.Helper()
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if ta.a == nil {
		return
	}
	ta.cancel()
	select {
	case err := <-ta.done:
		if err != nil {
			ta.t.Errorf("agent %s: Run: %v", ta.name, err)
		}
	case <-time.After(20 * time.Second):
		ta.t.Errorf("agent %s did not stop within 20s", ta.name)
	}
	ta.a = nil
}

func (ta *testAgent) nodeID() string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if ta.a == nil {
		return ""
	}
	return ta.a.NodeID()
}

func (ta *testAgent) addr() string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if ta.a == nil {
		return ""
	}
	return ta.a.Addr()
}

func (ta *testAgent) gossipAddr() string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if ta.a == nil {
		return ""
	}
	return ta.a.GossipAddr()
}

func (s *single) addAgents(n int) []*testAgent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*testAgent
	for range n {
		ta := newTestAgent(s.t, fmt.Sprintf("agent-%d", len(s.agents)), []string{s.addr})
		ta.start()
		s.agents = append(s.agents, ta)
		out = append(out, ta)
	}
	return out
}

func (s *single) stopAgents() {
	s.mu.Lock()
	all := append([]*testAgent(nil), s.agents...)
	s.mu.Unlock()
	for _, ta := range all {
		ta.kill()
	}
}

// startOrchestrator runs the real orchestrator (reconcilers and scheduling
// loop) on the state, as the leader of a real manager does.
func (s *single) startOrchestrator() {
	ctx, cancel := context.WithCancel(s.t.Context())
	o := orchestrator.New(s.state, s.apply, orchestrator.Options{Logger: testLogger()})
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	s.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			s.t.Errorf("orchestrator: %v", err)
		}
	})
}

func (s *single) createService(name string, replicas uint64) string {
	s.t.Helper()
	id := "svc-" + name
	_, err := s.apply.Apply(s.t.Context(), raftstore.CreateService{Service: &api.Service{
		ID: id, Spec: api.ServiceSpec{
			Name: name, Image: "img", Mode: api.ModeReplicated, Replicas: replicas,
			StopGracePeriod: api.Duration(100 * time.Millisecond),
		},
		CreatedAt: time.Now(), UpdatedAt: time.Now(),
	}})
	if err != nil {
		s.t.Fatal(err)
	}
	return id
}

// slotsRunning checks, from the state, that every slot of the service has
// exactly one task running, on a ready node; it returns the running tasks.
func slotsRunning(v *raftstore.View, serviceID string, replicas uint64) ([]*api.Task, error) {
	per := map[uint64][]*api.Task{}
	var running []*api.Task
	for _, t := range v.TasksByService(serviceID) {
		if t.Status.State == api.TaskRunning && t.DesiredState == api.TaskRunning {
			per[t.Slot] = append(per[t.Slot], t)
			running = append(running, t)
		}
	}
	for slot := uint64(1); slot <= replicas; slot++ {
		if len(per[slot]) != 1 {
			return nil, fmt.Errorf("slot %d has %d running tasks, want 1", slot, len(per[slot]))
		}
		if n := v.Node(per[slot][0].NodeID); n == nil || n.Status != api.NodeReady {
			return nil, fmt.Errorf("slot %d runs on node %s, which is not ready", slot, per[slot][0].NodeID)
		}
	}
	return running, nil
}

// containersRunning checks, from the fake runtimes, that every slot of the
// service has exactly one running container across all agents.
func containersRunning(agents []*testAgent, replicas uint64) error {
	per := map[uint64]int{}
	for _, ta := range agents {
		for _, id := range ta.rt.Running() {
			if t := ta.rt.Task(id); t != nil {
				per[t.Slot]++
			}
		}
	}
	for slot := uint64(1); slot <= replicas; slot++ {
		if per[slot] != 1 {
			return fmt.Errorf("slot %d has %d running containers across agents, want 1", slot, per[slot])
		}
	}
	if len(per) != int(replicas) {
		return fmt.Errorf("containers run in %d slots, want %d", len(per), replicas)
	}
	return nil
}

func nodeStatus(v *raftstore.View, id string) (api.NodeStatus, error) {
	n := v.Node(id)
	if n == nil {
		return "", errors.New("node " + id + " not registered")
	}
	return n.Status, nil
}
