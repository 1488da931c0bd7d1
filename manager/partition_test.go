package manager_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// TestCutPartitionsManager checks the harness the linearizability test
// relies on: a cut leader is replaced by one of the others, which take
// writes without it; the cut manager, still running and reachable by its
// clients, cannot answer a fresh read; healed, it follows and catches up.
func TestCutPartitionsManager(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{
		Proxied: true, NoGossip: true, LeaderTimeout: time.Second,
	})
	create(t, c.Client(0), "web")
	old := c.WaitLeader(waitTimeout)
	c.Cut(old)
	var next int
	c.WaitFor(waitTimeout, func() error {
		for i := range c.N() {
			if i != old && c.Manager(i).Raft().IsLeader() {
				next = i
				return nil
			}
		}
		return errors.New("no other manager leads yet")
	})
	create(t, c.Client(next), "api")
	_, err := c.Client(old).GetService(t.Context(), &shoalpb.GetServiceRequest{Service: "api"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("fresh read on the cut manager %d = %v, want Unavailable", old, err)
	}
	c.Heal(old)
	c.WaitFor(waitTimeout, func() error { return hasServices(t, c, old, "web", "api") })
	c.WaitFor(waitTimeout, func() error {
		if c.Manager(old).Raft().IsLeader() && c.Leader() != old {
			return errors.New("two leaders")
		}
		_, err := c.Client(old).GetService(t.Context(), &shoalpb.GetServiceRequest{Service: "api"})
		return err
	})
}

// TestCutLeaderRestarts: a leader cut off while clients write to it has
// appended entries that never commit; healed, it drops them (Raft clears
// the log suffix); killed and started again, it must come back from its
// data dir and serve.
func TestCutLeaderRestarts(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{
		Proxied: true, NoGossip: true, LeaderTimeout: time.Second,
	})
	create(t, c.Client(0), "web")
	old := c.WaitLeader(waitTimeout)
	// Writers keep the leader busy across the cut: what it appended when
	// the cut came never commits.
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				wctx, cancel := context.WithTimeout(ctx, time.Second)
				_, _ = c.Client(old).CreateService(wctx, &shoalpb.CreateServiceRequest{Spec: spec(fmt.Sprintf("w%d-%d", w, i))})
				cancel()
			}
		})
	}
	pause(ctx, 300*time.Millisecond)
	c.Cut(old)
	pause(ctx, time.Second)
	stop()
	wg.Wait()
	c.WaitFor(waitTimeout, func() error {
		if l := c.Leader(); l < 0 || l == old {
			return errors.New("no other manager leads yet")
		}
		return nil
	})
	create(t, c.Client((old+1)%c.N()), "api")
	c.Heal(old)
	c.WaitFor(waitTimeout, func() error {
		_, err := c.Client(old).GetService(t.Context(), &shoalpb.GetServiceRequest{Service: "api", Stale: true})
		return err
	})
	c.Kill(old)
	c.Restart(old)
	c.WaitFor(waitTimeout, func() error {
		_, err := c.Client(old).GetService(t.Context(), &shoalpb.GetServiceRequest{Service: "api"})
		return err
	})
}
