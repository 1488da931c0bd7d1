package orchestrator

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

const (
	benchNodes    = 1000
	benchReplicas = 10000
)

// BenchmarkCreateToAssigned measures, from the CreateService commit, the
// time until all 10,000 tasks of the service are assigned and committed on
// 1,000 ready nodes, with the orchestrator already running as the leader.
func BenchmarkCreateToAssigned(b *testing.B) {
	b.Run("local", func(b *testing.B) {
		benchCreateToAssigned(b, func(b *testing.B) (*raftstore.State, raftstore.Applier, func()) {
			state := raftstore.NewState()
			return state, raftstore.NewLocalApplier(state), func() {}
		})
	})
	// Through a 3-member Raft cluster on loopback, with the log fsynced:
	// the orchestrator runs on the leader and commits through it.
	b.Run("raft3", func(b *testing.B) {
		benchCreateToAssigned(b, func(b *testing.B) (*raftstore.State, raftstore.Applier, func()) {
			c := newCluster(b, 3, slog.New(slog.DiscardHandler), false, 0)
			leader := c.leader()
			return leader.node.State(), leader.node, func() {
				for _, m := range c.members {
					c.crash(m)
				}
			}
		})
	})
}

// benchCreateToAssigned runs the measurement on a fresh store per
// iteration; store returns the leader's state, its Applier and a func that
// closes the store.
func benchCreateToAssigned(b *testing.B, store func(b *testing.B) (*raftstore.State, raftstore.Applier, func())) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		state, applier, closeStore := store(b)
		registerNodes(b, applier)
		ctx, cancel := context.WithCancel(b.Context())
		o := New(state, applier, Options{Logger: slog.New(slog.DiscardHandler)})
		done := make(chan error, 1)
		go func() { done <- o.Run(ctx) }()
		spec := replicated("bench", benchReplicas)
		svc := &api.Service{ID: fmt.Sprintf("bench-%d", i), Spec: spec}
		b.StartTimer()

		start := time.Now()
		svc.CreatedAt = start
		if _, err := applier.Apply(b.Context(), raftstore.CreateService{Service: svc}); err != nil {
			b.Fatalf("iteration %d: create service: %v", i, err)
		}
		waitAssigned(b, state, svc.ID)
		total += time.Since(start)

		b.StopTimer()
		cancel()
		if err := <-done; err != nil {
			b.Fatalf("iteration %d: orchestrator: %v", i, err)
		}
		closeStore()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms")
}

func registerNodes(b *testing.B, applier raftstore.Applier) {
	b.Helper()
	cmds := make([]raftstore.Command, 0, benchNodes)
	for i := range benchNodes {
		id := fmt.Sprintf("node-%04d", i)
		cmds = append(cmds, raftstore.UpsertNode{Node: &api.Node{
			ID: id, Hostname: id, Role: api.RoleWorker, Status: api.NodeReady,
			Resources: api.Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30},
		}})
	}
	if _, err := applier.Apply(b.Context(), raftstore.Batch{Commands: cmds}); err != nil {
		b.Fatalf("register nodes: %v", err)
	}
}

// waitAssigned waits until every task of the service is assigned.
func waitAssigned(b *testing.B, state *raftstore.State, serviceID string) {
	b.Helper()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	for {
		changed := state.Changed()
		n := 0
		for _, t := range state.Read().TasksByService(serviceID) {
			if t.Status.State == api.TaskAssigned && t.NodeID != "" {
				n++
			}
		}
		if n == benchReplicas {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			b.Fatalf("%d of %d tasks assigned after 2 minutes", n, benchReplicas)
		}
	}
}

// BenchmarkIdlePass measures one pass that finds nothing to do, over 1,000
// nodes and 10,000 running tasks: the cost of every state change.
func BenchmarkIdlePass(b *testing.B) {
	state := raftstore.NewState()
	applier := raftstore.NewLocalApplier(state)
	registerNodes(b, applier)
	svc := &api.Service{ID: "idle", Spec: replicated("idle", benchReplicas)}
	if _, err := applier.Apply(b.Context(), raftstore.CreateService{Service: svc}); err != nil {
		b.Fatalf("create service: %v", err)
	}
	o := New(state, applier, Options{Logger: slog.New(slog.DiscardHandler)})
	for range 2 { // create and place, then nothing left
		if _, err := o.pass(b.Context()); err != nil {
			b.Fatalf("pass: %v", err)
		}
	}
	idx := state.Read().Index()
	for b.Loop() {
		if _, err := o.pass(b.Context()); err != nil {
			b.Fatalf("pass: %v", err)
		}
	}
	if got := state.Read().Index(); got != idx {
		b.Fatalf("idle passes wrote to the store (index %d → %d)", idx, got)
	}
}

// BenchmarkOneTaskChange measures the pass that follows one agent report
// over 1,000 nodes and 10,000 running tasks of 100 services: full
// reconciles every service, as every pass did before the watch; targeted
// reconciles the one service the report names, as Run does now.
func BenchmarkOneTaskChange(b *testing.B) {
	b.Run("100_services", func(b *testing.B) { benchOneTaskChange(b, 100) })
	// The worst case for a narrowed pass: the service is the whole cluster.
	b.Run("1_service", func(b *testing.B) { benchOneTaskChange(b, 1) })
}

func benchOneTaskChange(b *testing.B, services int) {
	state := raftstore.NewState()
	applier := raftstore.NewLocalApplier(state)
	registerNodes(b, applier)
	for i := range services {
		svc := &api.Service{ID: fmt.Sprintf("svc-%03d", i), Spec: replicated(fmt.Sprintf("svc-%03d", i), uint64(benchReplicas/services))}
		if _, err := applier.Apply(b.Context(), raftstore.CreateService{Service: svc}); err != nil {
			b.Fatalf("create service: %v", err)
		}
	}
	o := New(state, applier, Options{Logger: slog.New(slog.DiscardHandler)})
	for range 2 { // create and place
		if _, err := o.pass(b.Context()); err != nil {
			b.Fatalf("pass: %v", err)
		}
	}
	tasks := state.Read().TasksByService("svc-000")
	report := func(b *testing.B, i int) {
		t := tasks[i%len(tasks)]
		at := time.Unix(int64(i+1), 0)
		resp, err := applier.Apply(b.Context(), raftstore.UpdateTaskStatus{NodeID: t.NodeID, At: at, Updates: []raftstore.TaskStatusUpdate{{
			TaskID: t.ID, Status: api.TaskStatus{State: api.TaskRunning, Message: fmt.Sprintf("report %d", i), Timestamp: at},
		}}})
		if err != nil || resp.Value.(raftstore.TaskStatusResult).Applied != 1 {
			b.Fatalf("report %d: %v (%+v)", i, err, resp.Value)
		}
	}
	i := 0 // across both: a report older than the last is stale
	run := func(b *testing.B, sc func() *scope) {
		for b.Loop() {
			b.StopTimer()
			report(b, i)
			i++
			b.StartTimer()
			if _, _, err := o.passOver(b.Context(), sc()); err != nil {
				b.Fatalf("pass: %v", err)
			}
		}
	}
	idx := state.Read().Index()
	b.Run("full", func(b *testing.B) { run(b, func() *scope { return nil }) })
	b.Run("targeted", func(b *testing.B) {
		run(b, func() *scope {
			sc := newScope(false)
			sc.services["svc-000"] = true
			return sc
		})
	})
	// Every write since setup is a report: the passes found nothing to do.
	if got, want := state.Read().Index(), idx+uint64(i); got != want {
		b.Fatalf("passes wrote to the store (index %d, want %d)", got, want)
	}
}
