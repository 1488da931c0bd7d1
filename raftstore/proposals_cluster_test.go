package raftstore

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/seal"
)

// TestConcurrentAppliesThroughRaft: many callers at once on a real member
// with fsync and at-rest encryption. Each caller gets its own results in
// its own order (a version conflict would show a reordering), a refused
// command changes nothing, and the log replays after a restart to the same
// state.
func TestConcurrentAppliesThroughRaft(t *testing.T) {
	const callers, updates = 32, 4
	key := seal.NewKey()
	c := newCluster(t, 1, func(cfg *Config) { cfg.DataKey = key })
	n := c.nodes[c.waitLeader()]
	createService(t, n, "taken")
	before := n.Stats().LastIndex
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Go(func() {
			if err := caller(t, n, g, updates); err != nil {
				errs <- fmt.Errorf("caller %d: %w", g, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	v := n.State().Read()
	if got := v.ServiceByName("taken"); got == nil || got.ID != "id-taken" {
		t.Errorf("service taken = %+v, want id-taken unchanged by the refused creates", got)
	}
	commands := callers * (updates + 2)
	t.Logf("%d commands in %d entries", commands, n.Stats().LastIndex-before)
	want := dump(t, v)
	c.kill(0)
	c.restart(0, func(cfg *Config) { cfg.DataKey = key })
	n = c.nodes[c.waitLeader()]
	waitFor(t, 10*time.Second, "the restarted member never replayed its log", func() bool {
		return dump(t, n.State().Read()) == want
	})
}

// caller creates its service, updates it in order (each update names the
// version it expects), and tries once to take a name that is taken.
func caller(t *testing.T, n *Node, g, updates int) error {
	id, name := fmt.Sprintf("id-%d", g), fmt.Sprintf("c%d", g)
	resp, err := n.Apply(t.Context(), Request{ID: "r-" + id, Command: CreateService{Service: testService(id, name, 1)}})
	if err != nil {
		return err
	}
	if svc, ok := resp.Value.(*api.Service); !ok || svc.ID != id {
		return fmt.Errorf("create answered %#v, want service %s", resp.Value, id)
	}
	for k := range updates {
		spec := testService(id, name, uint64(k+2)).Spec
		resp, err := n.Apply(t.Context(), UpdateService{ID: id, Spec: spec, ExpectedVersion: uint64(k + 1), At: t0})
		if err != nil {
			return fmt.Errorf("update %d: %w", k, err)
		}
		if svc, ok := resp.Value.(*api.Service); !ok || svc.ID != id || svc.Spec.Replicas != uint64(k+2) {
			return fmt.Errorf("update %d answered %#v, want service %s at %d replicas", k, resp.Value, id, k+2)
		}
	}
	_, err = n.Apply(t.Context(), CreateService{Service: testService("other-"+id, "taken", 1)})
	if !errors.Is(err, ErrAlreadyExists) {
		return fmt.Errorf("create of a taken name: %v, want ErrAlreadyExists", err)
	}
	return nil
}

// TestLeaderLossWhileBatching: the leader of three members is killed while
// many callers write. Every caller's write in flight gets an error (none
// hangs), and sending every request again to the new leader, with the same
// IDs, leaves each service created exactly once.
func TestLeaderLossWhileBatching(t *testing.T) {
	const callers = 24
	c := newCluster(t, 3, nil)
	leader := c.waitLeader()
	n := c.nodes[leader]
	var done atomic.Int64
	var wg sync.WaitGroup
	sent := make([]int, callers) // requests each caller sent, the last maybe uncommitted
	for g := range callers {
		wg.Go(func() {
			for k := 0; ; k++ {
				sent[g] = k + 1
				if _, err := n.Apply(t.Context(), writeRequest(g, k)); err != nil {
					return
				}
				done.Add(1)
			}
		})
	}
	waitFor(t, 15*time.Second, "the callers never got going", func() bool { return done.Load() >= 200 })
	c.kill(leader)
	wg.Wait()
	next := c.nodes[c.waitLeader()]
	total := 0
	for g := range callers {
		for k := range sent[g] {
			total++
			if _, err := applyRetrying(t, next, writeRequest(g, k)); err != nil {
				t.Fatalf("request %d of caller %d again on the new leader: %v", k, g, err)
			}
		}
	}
	if got := len(next.State().Read().Services()); got != total {
		t.Errorf("%d services after %d distinct requests, want one each", got, total)
	}
}

func writeRequest(g, k int) Request {
	id := fmt.Sprintf("id-%d-%d", g, k)
	return Request{ID: "r-" + id, Command: CreateService{Service: testService(id, "s-"+id, 1)}}
}

// applyRetrying applies cmd, trying again while leadership settles.
func applyRetrying(t *testing.T, n *Node, cmd Command) (Response, error) {
	var resp Response
	var err error
	waitFor(t, 15*time.Second, "no leader took the request", func() bool {
		resp, err = n.Apply(t.Context(), cmd)
		return err == nil || !(errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader))
	})
	return resp, err
}
