package manager_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// taskCreations counts, from one manager's event feed, the tasks created
// for each slot of a service.
type taskCreations struct {
	mu      sync.Mutex
	bySlot  map[uint64]int
	dropped bool
}

func watchCreations(t *testing.T, state *raftstore.State, serviceName string) *taskCreations {
	tc := &taskCreations{bySlot: map[uint64]int{}}
	events, cancel := state.Subscribe(1 << 14)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for batch := range events {
			tc.mu.Lock()
			for _, e := range batch {
				if e.Kind == "task" && e.Action == "create" && e.Task.ServiceName == serviceName {
					tc.bySlot[e.Task.Slot]++
				}
			}
			tc.mu.Unlock()
		}
		tc.mu.Lock()
		tc.dropped = true
		tc.mu.Unlock()
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return tc
}

// check reports a slot of 1..replicas that got other than one task, or a
// task outside them, or a feed that was cut.
func (tc *taskCreations) check(replicas uint64) error {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.dropped {
		return fmt.Errorf("the event feed was cut")
	}
	for slot, n := range tc.bySlot {
		if slot < 1 || slot > replicas || n != 1 {
			return fmt.Errorf("slot %d: %d tasks created (slots 1..%d want one each): %v", slot, n, replicas, tc.bySlot)
		}
	}
	if uint64(len(tc.bySlot)) != replicas {
		return fmt.Errorf("%d slots got a task, want %d", len(tc.bySlot), replicas)
	}
	return nil
}

// liveBySlot counts the live tasks (meant to run, not ended) of each slot
// in a view.
func liveBySlot(v *raftstore.View, svc *api.Service) map[uint64]int {
	out := map[uint64]int{}
	for _, task := range v.TasksByService(svc.ID) {
		if task.DesiredState == api.TaskRunning && !task.Status.State.Terminal() {
			out[task.Slot]++
		}
	}
	return out
}

// TestLeadershipBackAndForthDuringScale: leadership goes A→B→A→B→A, each
// time right after a scale, while the orchestrators create the new slots'
// tasks. A manager that leads again must start its term from the applied
// log: acting on a state that lacks the other leader's last entries would
// create a second task for slots that already have one. Nothing fails
// here (there are no nodes; tasks wait for one), so every slot must get
// exactly one task, ever.
func TestLeadershipBackAndForthDuringScale(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{NoGossip: true})
	a := c.WaitLeader(waitTimeout)
	b := (a + 1) % c.N()
	var feeds []*taskCreations
	for i := range c.N() {
		feeds = append(feeds, watchCreations(t, c.Manager(i).Raft().State(), "web"))
	}
	web := spec("web")
	web.Replicas = 1
	if _, err := c.Client(a).CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: web}); err != nil {
		t.Fatal(err)
	}
	const rounds = 4
	leader, next := a, b
	var replicas uint64
	for round := range rounds {
		replicas = uint64(4 * (round + 1))
		if _, err := c.Client(leader).ScaleService(t.Context(), &shoalpb.ScaleServiceRequest{Service: "web", Replicas: replicas}); err != nil {
			t.Fatalf("round %d: scale to %d on manager %d: %v", round, replicas, leader, err)
		}
		c.TransferLeadership(next, waitTimeout)
		leader, next = next, leader
	}
	if leader != a {
		t.Fatalf("the last leader is manager %d, want %d (A→B→A…)", leader, a)
	}
	// Wait until the last leader has filled every slot.
	c.WaitFor(waitTimeout, func() error {
		v := c.Manager(leader).Raft().State().Read()
		svc := v.ServiceByName("web")
		live := liveBySlot(v, svc)
		for slot := uint64(1); slot <= replicas; slot++ {
			if live[slot] != 1 {
				return fmt.Errorf("slot %d has %d live tasks: %v", slot, live[slot], live)
			}
		}
		if uint64(len(live)) != replicas {
			return fmt.Errorf("live tasks in %d slots, want %d: %v", len(live), replicas, live)
		}
		return nil
	})
	// Every manager applies the same log: each saw one task per slot.
	c.WaitFor(waitTimeout, func() error {
		for i, f := range feeds {
			if err := f.check(replicas); err != nil {
				return fmt.Errorf("manager %d: %w", i, err)
			}
		}
		return nil
	})
}
