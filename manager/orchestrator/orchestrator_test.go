package orchestrator

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/raftstore"
)

// laggingApplier is a fake at the Applier seam standing for a new Raft
// leader whose state has not applied the whole log yet: VerifyLeader
// blocks until release is closed (entered is closed when it is called).
type laggingApplier struct {
	raftstore.Applier
	entered chan struct{}
	release chan struct{}
	applied atomic.Int32
}

func (a *laggingApplier) VerifyLeader(ctx context.Context) error {
	close(a.entered)
	select {
	case <-a.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *laggingApplier) Apply(ctx context.Context, cmd raftstore.Command) (raftstore.Response, error) {
	a.applied.Add(1)
	return a.Applier.Apply(ctx, cmd)
}

func TestNoPassBeforeTheLeaderBarrier(t *testing.T) {
	state := raftstore.NewState()
	local := raftstore.NewLocalApplier(state)
	h := &harness{t: t, state: state, apply: local, clock: newFakeClock()}
	h.addNode("n1", nil)
	svc := h.createService(replicated("web", 2))

	lag := &laggingApplier{Applier: local, entered: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- New(state, lag, Options{Logger: testLogger(t), Clock: h.clock}).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	select {
	case <-lag.entered:
	case <-time.After(waitTimeout):
		t.Fatalf("the orchestrator never asked for the barrier")
	}
	// It asked before it wrote anything, and a state change does not
	// make it write while it waits.
	h.addNode("n2", nil)
	if n := lag.applied.Load(); n != 0 || len(h.state.Read().TasksByService(svc.ID)) != 0 {
		t.Fatalf("%d commands before the barrier passed, want none", n)
	}
	close(lag.release)
	h.settle(svc, 2)
}

// countingBarrier is a fake at the Applier seam that reports every barrier
// it is asked for on calls.
type countingBarrier struct {
	raftstore.Applier
	calls chan struct{}
}

func (b *countingBarrier) VerifyLeader(context.Context) error {
	b.calls <- struct{}{}
	return nil
}

// TestEveryTermStartsWithTheBarrier: the manager keeps one Orchestrator
// for its whole life and calls Run once per term; each run must wait for
// the barrier, not only the first.
func TestEveryTermStartsWithTheBarrier(t *testing.T) {
	state := raftstore.NewState()
	local := raftstore.NewLocalApplier(state)
	h := &harness{t: t, state: state, apply: local, clock: newFakeClock()}
	h.addNode("n1", nil)
	svc := h.createService(replicated("web", 2))
	b := &countingBarrier{Applier: local, calls: make(chan struct{}, 16)}
	o := New(state, b, Options{Logger: testLogger(t), Clock: h.clock})
	for term := 1; term <= 3; term++ {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- o.Run(ctx) }()
		select {
		case <-b.calls:
		case <-time.After(waitTimeout):
			cancel()
			<-done
			t.Fatalf("term %d: the orchestrator did not ask for the barrier", term)
		}
		h.settle(svc, 2)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("term %d: Run: %v", term, err)
		}
		if n := len(b.calls); n != 0 {
			t.Fatalf("term %d: %d more barriers within one term, want one", term, n)
		}
	}
}

// lostAnswer is a fake at the Applier seam: it commits the first command
// and answers it as a leader that lost its quorum meanwhile would.
type lostAnswer struct {
	*countingBarrier
	lost atomic.Bool
}

func (a *lostAnswer) Apply(ctx context.Context, cmd raftstore.Command) (raftstore.Response, error) {
	resp, err := a.countingBarrier.Apply(ctx, cmd)
	if err == nil && a.lost.CompareAndSwap(false, true) {
		return raftstore.Response{}, fmt.Errorf("%w: %w (fake)", raftstore.ErrCommitUncertain, raftstore.ErrNoLeader)
	}
	return resp, err
}

// TestUncertainPassIsFollowedByABarrier: a pass whose commit is uncertain
// may still land; the next pass waits for the barrier so that it sees it
// rather than make the same tasks again.
func TestUncertainPassIsFollowedByABarrier(t *testing.T) {
	state := raftstore.NewState()
	local := raftstore.NewLocalApplier(state)
	h := &harness{t: t, state: state, apply: local, clock: newFakeClock()}
	h.addNode("n1", nil)
	svc := h.createService(replicated("web", 2))
	a := &lostAnswer{countingBarrier: &countingBarrier{Applier: local, calls: make(chan struct{}, 16)}}
	h.startOrchestratorWith(a)
	for n := 1; n <= 2; n++ {
		select {
		case <-a.calls:
		case <-time.After(waitTimeout):
			t.Fatalf("barrier %d (at the start, then after the uncertain commit) never asked for", n)
		}
	}
	v := h.settle(svc, 2)
	if n := len(v.TasksByService(svc.ID)); n != 2 {
		t.Errorf("%d tasks of web after an uncertain pass, want 2", n)
	}
}
