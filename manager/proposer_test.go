package manager

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// gatedApplier is a fake at the Applier seam: it applies to a local state,
// but only once the test opens the gate, and counts the entries it got.
type gatedApplier struct {
	local   *raftstore.LocalApplier
	gate    chan struct{}
	entries atomic.Int64
}

func (g *gatedApplier) Apply(ctx context.Context, cmd raftstore.Command) (raftstore.Response, error) {
	g.entries.Add(1)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return raftstore.Response{}, ctx.Err()
	}
	return g.local.Apply(ctx, cmd)
}

func TestProposerBatchesConcurrentCommands(t *testing.T) {
	g := &gatedApplier{local: raftstore.NewLocalApplier(raftstore.NewState()), gate: make(chan struct{})}
	p := newProposer(g)
	ctx, cancel := context.WithCancel(t.Context())
	var run sync.WaitGroup
	run.Go(func() { p.Run(ctx) })
	t.Cleanup(func() { cancel(); run.Wait() })

	const n = 64
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("svc-%d", i)
	}
	names[n-1] = names[0] // one duplicate: refused on its own
	type result struct {
		resp raftstore.Response
		err  error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	send := func(i int) {
		wg.Go(func() {
			svc := &api.Service{ID: fmt.Sprintf("id-%d", i), Spec: api.ServiceSpec{Name: names[i], Image: "busybox"}}
			resp, err := p.Apply(t.Context(), raftstore.CreateService{Service: svc})
			results[i] = result{resp, err}
		})
	}
	// The first maxInFlight commands go out alone and block in the
	// applier; of the rest, Run holds one while it waits for a slot and
	// the others queue behind it.
	for i := range maxInFlight {
		send(i)
		waitUntil(t, func() bool { return g.entries.Load() == int64(i+1) })
	}
	for i := maxInFlight; i < n; i++ {
		send(i)
	}
	waitUntil(t, func() bool { return len(p.queue) == n-maxInFlight-1 })
	close(g.gate)
	wg.Wait()

	if got := g.entries.Load(); got != maxInFlight+1 {
		t.Fatalf("%d entries for %d commands, want %d", got, n, maxInFlight+1)
	}
	dups := 0
	for i, r := range results {
		if errors.Is(r.err, raftstore.ErrAlreadyExists) {
			dups++
			continue
		}
		if r.err != nil {
			t.Fatalf("command %d: %v", i, r.err)
		}
		svc, ok := r.resp.Value.(*api.Service)
		if !ok || svc.Spec.Name != names[i] || r.resp.Index == 0 {
			t.Fatalf("command %d got %#v at index %d, want its own service %s", i, r.resp.Value, r.resp.Index, names[i])
		}
	}
	if dups != 1 {
		t.Fatalf("%d commands refused as duplicates, want 1", dups)
	}
}

func TestProposerStopAnswersWaiters(t *testing.T) {
	g := &gatedApplier{local: raftstore.NewLocalApplier(raftstore.NewState()), gate: make(chan struct{})}
	p := newProposer(g)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	errs := make(chan error, 4)
	send := func(i int) {
		go func() {
			svc := &api.Service{ID: fmt.Sprintf("id-%d", i), Spec: api.ServiceSpec{Name: fmt.Sprintf("s%d", i), Image: "busybox"}}
			_, err := p.Apply(t.Context(), raftstore.CreateService{Service: svc})
			errs <- err
		}()
	}
	for i := range maxInFlight {
		send(i)
		waitUntil(t, func() bool { return g.entries.Load() == int64(i+1) })
	}
	send(2)
	send(3)
	waitUntil(t, func() bool { return len(p.queue) == 1 })
	cancel()
	<-done
	for range 4 {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatal("a command succeeded although the applier never let one through")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a caller still waits after the proposer stopped")
		}
	}
}

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		<-tick.C
	}
}
