package orchestrator

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// waitTimeout bounds every wait for a condition on the state.
const waitTimeout = 10 * time.Second

// fakeClock is a Clock moved by hand: timers fire when Advance passes them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clock *fakeClock
	at    time.Time
	ch    chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock by d and fires the timers it passes.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if t.at.After(c.now) {
			return false
		}
		t.ch <- c.now
		return true
	})
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	n := len(t.clock.timers)
	t.clock.timers = slices.DeleteFunc(t.clock.timers, func(x *fakeTimer) bool { return x == t })
	return len(t.clock.timers) < n
}

// harness is a real State with a LocalApplier, a fake clock and one
// orchestrator at a time.
type harness struct {
	t     *testing.T
	state *raftstore.State
	apply raftstore.Applier
	clock *fakeClock
	stop  func()
	seq   int
	// metrics, if set, receives the next orchestrator's figures.
	metrics *Metrics
	// configure, if set, sets the next orchestrator's test hooks.
	configure func(o *Orchestrator)
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	state := raftstore.NewState()
	h := &harness{t: t, state: state, apply: raftstore.NewLocalApplier(state), clock: newFakeClock()}
	h.startOrchestrator()
	return h
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// startOrchestrator runs a new orchestrator on the harness's state, as a
// newly elected leader would; stopOrchestrator ends it (and waits).
func (h *harness) startOrchestrator() {
	h.t.Helper()
	h.startOrchestratorWith(h.apply)
}

// startOrchestratorWith runs the orchestrator committing through applier
// (a fake at the seam) while the test keeps committing through h.apply.
func (h *harness) startOrchestratorWith(applier raftstore.Applier) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.t.Context())
	o := New(h.state, applier, Options{Logger: testLogger(h.t), Clock: h.clock, Metrics: h.metrics})
	if h.configure != nil {
		h.configure(o)
	}
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("orchestrator Run: %v", err)
			}
		})
	}
	h.t.Cleanup(h.stop)
}

func (h *harness) stopOrchestrator() { h.stop() }

func (h *harness) do(cmd raftstore.Command) raftstore.Response {
	h.t.Helper()
	resp, err := h.apply.Apply(h.t.Context(), cmd)
	if err != nil {
		h.t.Fatalf("apply %T: %v", cmd, err)
	}
	return resp
}

// addNode registers a ready, active node with 4 CPUs and 4 GiB.
func (h *harness) addNode(id string, labels map[string]string) {
	h.t.Helper()
	h.do(raftstore.UpsertNode{Node: &api.Node{
		ID: id, Hostname: id, Role: api.RoleWorker, Labels: labels,
		Resources: api.Resources{NanoCPUs: 4e9, MemoryBytes: 4 << 30},
		CreatedAt: h.clock.Now(), UpdatedAt: h.clock.Now(),
	}})
	h.setNodeStatus(id, api.NodeReady)
}

func (h *harness) setNodeStatus(id string, s api.NodeStatus) {
	h.t.Helper()
	h.do(raftstore.SetNodeStatus{ID: id, Status: s, At: h.clock.Now()})
}

func (h *harness) setAvailability(id string, a api.NodeAvailability) {
	h.t.Helper()
	h.do(raftstore.UpdateNode{ID: id, Availability: a, At: h.clock.Now()})
}

func replicated(name string, n uint64) api.ServiceSpec {
	return api.ServiceSpec{
		Name: name, Image: "busybox:1", Mode: api.ModeReplicated, Replicas: n,
		Resources:     api.ResourceRequirements{Reservations: api.Resources{NanoCPUs: 1e8, MemoryBytes: 1 << 20}},
		RestartPolicy: api.RestartPolicy{Condition: api.RestartAny},
	}
}

func (h *harness) createService(spec api.ServiceSpec) *api.Service {
	h.t.Helper()
	h.seq++
	svc := &api.Service{ID: fmt.Sprintf("svc-%s-%d", spec.Name, h.seq), Spec: spec,
		CreatedAt: h.clock.Now(), UpdatedAt: h.clock.Now()}
	return h.do(raftstore.CreateService{Service: svc}).Value.(*api.Service)
}

func (h *harness) updateService(id string, spec api.ServiceSpec) *api.Service {
	h.t.Helper()
	return h.do(raftstore.UpdateService{ID: id, Spec: spec, At: h.clock.Now()}).Value.(*api.Service)
}

// report is what an agent would send about one of its tasks; it fails the
// test if the store does not take it.
func (h *harness) report(t *api.Task, s api.TaskState, exit int32) {
	h.t.Helper()
	if !h.tryReport(t, s, exit) {
		h.t.Fatalf("report %s for task %s (slot %d, %s): not applied", s, t.ID, t.Slot, t.Status.State)
	}
}

// tryReport sends a report and says whether the store took it (a task the
// orchestrator ended in the meantime does not take it).
func (h *harness) tryReport(t *api.Task, s api.TaskState, exit int32) bool {
	h.t.Helper()
	resp := h.do(raftstore.UpdateTaskStatus{NodeID: t.NodeID, At: h.clock.Now(), Updates: []raftstore.TaskStatusUpdate{{
		TaskID: t.ID, Status: api.TaskStatus{State: s, ExitCode: exit, Message: "reported by test", Timestamp: h.clock.Now()},
	}}})
	return resp.Value.(raftstore.TaskStatusResult).Applied == 1
}

// waitFor polls the state until cond holds (it returns "" then, or what it
// still waits for), failing the test after waitTimeout.
func (h *harness) waitFor(what string, cond func(v *raftstore.View) string) *raftstore.View {
	h.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	// Conditions on more than the state (metrics, which move once a commit
	// has returned) are also checked again every little while.
	recheck := time.NewTicker(20 * time.Millisecond)
	defer recheck.Stop()
	for {
		changed := h.state.Changed()
		v := h.state.Read()
		why := cond(v)
		if why == "" {
			return v
		}
		select {
		case <-changed:
		case <-recheck.C:
		case <-deadline.C:
			h.t.Fatalf("waiting for %s: still %s\n%s", what, why, dump(v))
		}
	}
}

// barrier returns once the orchestrator has finished a pass over
// everything applied before the call: it creates a service no node can take
// and waits for its pending task, then removes it.
func (h *harness) barrier() {
	h.t.Helper()
	spec := replicated(fmt.Sprintf("barrier-%d", h.seq+1), 1)
	spec.Placement.Constraints = []string{"node.labels.barrier==yes"}
	svc := h.createService(spec)
	h.waitFor("barrier task", func(v *raftstore.View) string {
		for _, t := range v.TasksByService(svc.ID) {
			if t.Status.State == api.TaskPending {
				return ""
			}
		}
		return "no pending barrier task"
	})
	h.do(raftstore.RemoveService{ID: svc.ID, At: h.clock.Now()})
}

// dump prints the tasks of a view, for failure messages.
func dump(v *raftstore.View) string {
	var b strings.Builder
	for _, t := range v.Tasks() {
		fmt.Fprintf(&b, "  %s slot=%d node=%s v%d desired=%s state=%s attempt=%d exit=%d notbefore=%s reason=%q msg=%q\n",
			t.ServiceName, t.Slot, t.NodeID, t.SpecVersion, t.DesiredState, t.Status.State, t.Attempt,
			t.Status.ExitCode, t.NotBefore.Format(time.TimeOnly), t.Status.PendingReason, t.Status.Message)
	}
	return b.String()
}

// live returns the tasks of a service that should run and have not ended.
func live(v *raftstore.View, serviceID string) []*api.Task {
	var out []*api.Task
	for _, t := range v.TasksByService(serviceID) {
		if t.DesiredState <= api.TaskRunning && !t.Status.State.Terminal() {
			out = append(out, t)
		}
	}
	return out
}

// count returns how many tasks satisfy ok.
func count(ts []*api.Task, ok func(*api.Task) bool) int {
	n := 0
	for _, t := range ts {
		if ok(t) {
			n++
		}
	}
	return n
}

func inState(s api.TaskState) func(*api.Task) bool {
	return func(t *api.Task) bool { return t.Status.State == s }
}

// runAll reports every assigned task that should run as running, and
// every task told to stop as shut down, as healthy agents would.
func (h *harness) runAll(v *raftstore.View) {
	h.t.Helper()
	for _, cmd := range agentReports(v, h.clock.Now()) {
		h.do(cmd)
	}
}

// agentReports is what fake agents on the ready nodes would report after
// seeing view v: assigned tasks that should run are running, tasks told to
// stop have stopped. One command per node, as an agent batches its reports.
func agentReports(v *raftstore.View, now time.Time) []raftstore.UpdateTaskStatus {
	byNode := make(map[string][]raftstore.TaskStatusUpdate)
	var nodes []string
	for _, t := range v.Tasks() {
		var s api.TaskState
		switch {
		case t.DesiredState == api.TaskRunning && t.Status.State == api.TaskAssigned:
			s = api.TaskRunning
		case t.DesiredState > api.TaskRunning && t.Status.State.Active():
			s = api.TaskShutdown
		default:
			continue
		}
		if n := v.Node(t.NodeID); n == nil || n.Status != api.NodeReady {
			continue
		}
		if _, ok := byNode[t.NodeID]; !ok {
			nodes = append(nodes, t.NodeID)
		}
		byNode[t.NodeID] = append(byNode[t.NodeID], raftstore.TaskStatusUpdate{
			TaskID: t.ID, Status: api.TaskStatus{State: s, Message: "fake agent", Timestamp: now},
		})
	}
	cmds := make([]raftstore.UpdateTaskStatus, 0, len(nodes))
	for _, n := range nodes {
		cmds = append(cmds, raftstore.UpdateTaskStatus{NodeID: n, Updates: byNode[n], At: now})
	}
	return cmds
}

// settle runs the fake agents until every task of the service that should
// run is running and nothing is left to stop.
func (h *harness) settle(svc *api.Service, want int) *raftstore.View {
	h.t.Helper()
	return h.waitFor(fmt.Sprintf("%d running tasks of %s", want, svc.Spec.Name), func(v *raftstore.View) string {
		h.runAll(v)
		ts := live(v, svc.ID)
		running := count(ts, inState(api.TaskRunning))
		stopping := count(v.TasksByService(svc.ID), func(t *api.Task) bool {
			return t.DesiredState > api.TaskRunning && !t.Status.State.Terminal()
		})
		if running != want || len(ts) != want || stopping > 0 {
			return fmt.Sprintf("%d live, %d running, %d stopping", len(ts), running, stopping)
		}
		return ""
	})
}

// slotsOf returns the slots of tasks, sorted.
func slotsOf(ts []*api.Task) []uint64 {
	var out []uint64
	for _, t := range ts {
		out = append(out, t.Slot)
	}
	slices.Sort(out)
	return out
}
