package orchestrator

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// TestGlobalServicesCompeteForANode: two global services each reserve 3 of
// n1's 4 CPUs. Whether the orchestrator sees both in one pass, or the
// other service's task was assigned by a commit its pass had not seen (an
// earlier leader's last entry), n1 is never overcommitted and the task that
// lost waits, pending with a reason, until the winner's service is removed.
func TestGlobalServicesCompeteForANode(t *testing.T) {
	wide := func(name string) api.ServiceSpec {
		spec := replicated(name, 0)
		spec.Mode = api.ModeGlobal
		spec.Resources.Reservations = api.Resources{NanoCPUs: 3e9, MemoryBytes: 1 << 30}
		return spec
	}
	cases := []struct {
		name string
		// start starts the orchestrator and creates both services; it
		// returns the service expected to win n1 ("" if either may).
		start func(h *harness) string
	}{
		{name: "both seen in one pass", start: func(h *harness) string {
			h.createService(wide("alpha"))
			h.createService(wide("beta"))
			h.startOrchestrator()
			return ""
		}},
		{name: "the other assigned behind the pass's view", start: func(h *harness) string {
			beta := &api.Service{ID: "svc-beta", Spec: wide("beta"), CreatedAt: h.clock.Now(), UpdatedAt: h.clock.Now()}
			task := &api.Task{ID: "beta-n1", ServiceID: beta.ID, ServiceName: "beta", NodeID: "n1",
				DesiredState: api.TaskRunning, SpecVersion: 1,
				Status:    api.TaskStatus{State: api.TaskNew, Timestamp: h.clock.Now()},
				CreatedAt: h.clock.Now(), UpdatedAt: h.clock.Now()}
			h.startOrchestratorWith(&racingApplier{Applier: h.apply, race: raftstore.Batch{Commands: []raftstore.Command{
				raftstore.CreateService{Service: beta},
				raftstore.WriteTasks{Create: []*api.Task{task}, At: h.clock.Now()},
				raftstore.AssignTasks{Assignments: []raftstore.Assignment{{TaskID: task.ID, NodeID: "n1"}}, At: h.clock.Now()},
			}}})
			h.createService(wide("alpha"))
			return "beta"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state := raftstore.NewState()
			h := &harness{t: t, state: state, apply: raftstore.NewLocalApplier(state), clock: newFakeClock()}
			overcommit := watchOvercommit(t, state)
			h.addNode("n1", nil)
			want := tc.start(h)

			var winner, loser *api.Task
			contest := func(v *raftstore.View) string {
				winner, loser = nil, nil
				ts := v.TasksByNode("n1")
				if len(ts) != 2 {
					return fmt.Sprintf("%d tasks on n1, want 2", len(ts))
				}
				for _, task := range ts {
					switch {
					case task.Status.State == api.TaskAssigned:
						winner = task
					case task.Status.State == api.TaskPending && strings.Contains(task.Status.PendingReason, "CPU"):
						loser = task
					}
				}
				if winner == nil || loser == nil {
					return "not one assigned and one pending for want of CPU"
				}
				return ""
			}
			h.waitFor("one task assigned, the other pending", contest)
			if want != "" && winner.ServiceName != want {
				t.Fatalf("%s won n1, want %s\n%s", winner.ServiceName, want, dump(h.state.Read()))
			}
			// Another pass, over a state that has moved past any refusal,
			// changes nothing on n1.
			h.barrier()
			if why := contest(h.state.Read()); why != "" {
				t.Fatalf("after another pass: %s\n%s", why, dump(h.state.Read()))
			}
			if why := overcommit(); why != "" {
				t.Fatal(why)
			}

			h.do(raftstore.RemoveService{ID: winner.ServiceID, At: h.clock.Now()})
			loserID := loser.ID
			h.waitFor("the waiting task assigned once n1 has room", func(v *raftstore.View) string {
				h.runAll(v)
				if s := v.Task(loserID).Status.State; s < api.TaskAssigned {
					return s.String()
				}
				return ""
			})
			if why := overcommit(); why != "" {
				t.Fatal(why)
			}
		})
	}
}

// watchOvercommit follows the store's event feed from now on. The returned
// func folds the events that arrived since its last call and says when a
// node's active tasks reserved more than the node has, after any applied
// command ("" if never).
func watchOvercommit(t *testing.T, state *raftstore.State) func() string {
	events, cancel := state.Subscribe(4096)
	t.Cleanup(cancel)
	tasks := make(map[string]*api.Task)
	nodes := make(map[string]*api.Node)
	specs := make(map[specKey]api.Resources) // reservations by spec version
	var first string
	fold := func(batch []raftstore.Event) {
		if len(batch) == 0 {
			return
		}
		for _, e := range batch {
			switch {
			case e.Task != nil && e.Action == "remove":
				delete(tasks, e.Task.ID)
			case e.Task != nil:
				tasks[e.Task.ID] = e.Task
			case e.Node != nil && e.Action == "remove":
				delete(nodes, e.Node.ID)
			case e.Node != nil:
				nodes[e.Node.ID] = e.Node
			case e.Service != nil && e.Action != "remove":
				specs[specKey{e.Service.ID, e.Service.SpecVersion}] = e.Service.Spec.Resources.Reservations
			}
		}
		used := make(map[string]api.Resources)
		for _, task := range tasks {
			if task.Status.State.Active() {
				used[task.NodeID] = used[task.NodeID].Add(specs[specKey{task.ServiceID, task.SpecVersion}])
			}
		}
		for id, u := range used {
			n := nodes[id]
			if first == "" && n != nil && (u.NanoCPUs > n.Resources.NanoCPUs || u.MemoryBytes > n.Resources.MemoryBytes) {
				first = fmt.Sprintf("node %s overcommitted at index %d: %+v reserved of %+v", id, batch[0].Index, u, n.Resources)
			}
		}
	}
	return func() string {
		for {
			select {
			case batch, ok := <-events:
				if !ok {
					return "the event feed dropped the overcommit watch"
				}
				fold(batch)
			default:
				return first
			}
		}
	}
}
