package manager_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// The linearizability test: clients scale and inspect one service through
// the gRPC API of three managers (real Raft over TCP on loopback) while a
// nemesis kills and cuts managers, the leader included; porcupine then
// checks that the history of answers could have come from one register
// (the replica count) changed by one operation at a time.
const (
	linClients    = 5
	linRunFor     = 20 * time.Second
	linOpTimeout  = 3 * time.Second
	linMaxValue   = 6 // replica counts written; small, as each one makes tasks
	linCheckLimit = 30 * time.Second
)

// regInput is one operation on the register: a scale (write) or a fresh
// inspect (read).
type regInput struct {
	write bool
	value uint64
}

// regModel is a register of the replica count: writes set it, reads return
// it. A write whose outcome is unknown has no output and no return time.
var regModel = porcupine.Model{
	Init: func() any { return uint64(0) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.write {
			return true, in.value
		}
		return output.(uint64) == state.(uint64), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		switch {
		case !in.write:
			return fmt.Sprintf("inspect -> %d", output)
		case output == nil:
			return fmt.Sprintf("scale %d -> ?", in.value)
		}
		return fmt.Sprintf("scale %d", in.value)
	},
	DescribeOperationMetadata: func(info any) string {
		if info == nil {
			return ""
		}
		return fmt.Sprint(info)
	},
}

// history collects the operations of every client.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	// unknown writes get their return time once the history is complete.
	unknown []int
	notes   []porcupine.Annotation
	// counts: answered writes and reads, writes of unknown outcome,
	// failed reads
	writes, reads, uncertain, failedReads int
}

func (h *history) now() int64 { return time.Since(h.start).Nanoseconds() }

func (h *history) add(op porcupine.Operation, ok, uncertain bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	in := op.Input.(regInput)
	switch {
	case uncertain:
		h.unknown = append(h.unknown, len(h.ops))
		h.uncertain++
	case !ok:
		h.failedReads++
		return // a failed read says nothing about the register
	case in.write:
		h.writes++
	default:
		h.reads++
	}
	h.ops = append(h.ops, op)
}

// note records what the nemesis did, for the visualization.
func (h *history) note(start int64, what string) {
	h.mu.Lock()
	h.notes = append(h.notes, porcupine.Annotation{Tag: "nemesis", Start: start, End: h.now(), Description: what})
	h.mu.Unlock()
}

// complete gives every write of unknown outcome an open end: it may have
// taken effect at any time after its call.
func (h *history) complete() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	end := h.now() + 1
	for _, i := range h.unknown {
		h.ops[i].Return = end
	}
	return h.ops
}

func TestLinearizableScaleAndInspect(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{
		Proxied: true, NoGossip: true, LeaderTimeout: time.Second,
	})
	if _, err := c.Client(c.WaitLeader(waitTimeout)).CreateService(t.Context(), &shoalpb.CreateServiceRequest{
		Spec: &shoalpb.ServiceSpec{Name: "reg", Image: "busybox:latest", Mode: "replicated", Replicas: 0},
	}); err != nil {
		t.Fatalf("create the service: %v", err)
	}
	h := &history{start: time.Now()}
	ctx, cancel := context.WithTimeout(t.Context(), linRunFor)
	defer cancel()
	var wg sync.WaitGroup
	for k := range linClients {
		cl := c.NewClient(k % c.N())
		wg.Go(func() { runClient(ctx, t, h, k, cl) })
	}
	faults := runNemesis(ctx, t, c, h)
	wg.Wait()
	t.Logf("%d faults; %d scales and %d inspects answered, %d scales of unknown outcome, %d failed reads",
		faults, h.writes, h.reads, h.uncertain, h.failedReads)
	if h.writes < 50 || h.reads < 50 || faults < 4 {
		t.Fatalf("too little happened to judge: %d scales, %d inspects, %d faults", h.writes, h.reads, faults)
	}
	checkLinearizable(t, h)
}

// runClient scales and inspects the service through one manager until ctx
// ends, one operation at a time, each bounded by linOpTimeout.
func runClient(ctx context.Context, t *testing.T, h *history, id int, cl shoalpb.ControlClient) {
	rng := rand.New(rand.NewPCG(uint64(id), 9))
	for ctx.Err() == nil {
		in := regInput{write: rng.IntN(2) == 0, value: uint64(rng.IntN(linMaxValue + 1))}
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), linOpTimeout)
		op := porcupine.Operation{ClientId: id, Input: in, Call: h.now()}
		var err error
		if in.write {
			if _, err = cl.ScaleService(octx, &shoalpb.ScaleServiceRequest{Service: "reg", Replicas: in.value}); err == nil {
				op.Output = true
			}
		} else {
			var svc *shoalpb.Service
			if svc, err = cl.GetService(octx, &shoalpb.GetServiceRequest{Service: "reg"}); err == nil {
				op.Output = svc.GetSpec().GetReplicas()
			}
		}
		op.Return = h.now()
		cancel()
		if err != nil {
			op.Metadata = status.Code(err).String()
		}
		switch code := status.Code(err); {
		case code == codes.InvalidArgument || code == codes.NotFound:
			t.Errorf("client %d: %v: %v", id, in, err) // the test's own mistake: no fault causes these
		case err != nil && in.write:
			// The write may have been committed before the answer was lost.
			h.add(op, false, true)
		default:
			h.add(op, err == nil, false)
		}
		think := time.Duration(5+rng.IntN(20)) * time.Millisecond
		if err != nil {
			// Every write of unknown outcome widens porcupine's search; a
			// client whose manager is down need not pile them up.
			think = time.Duration(100+rng.IntN(200)) * time.Millisecond
		}
		pause(ctx, think)
	}
}

// runNemesis breaks one manager at a time until ctx ends, the leader more
// often than not: kill -9 (then a restart from its data dir) or a cut of
// its links to the other managers (then healed). It returns how many faults
// it made; every manager runs and is connected again when it returns.
func runNemesis(ctx context.Context, t *testing.T, c *managertest.Cluster, h *history) int {
	rng := rand.New(rand.NewPCG(7, 7))
	faults := 0
	pause(ctx, time.Second)
	for ctx.Err() == nil {
		victim := c.Leader()
		if victim < 0 || rng.IntN(3) == 0 {
			victim = rng.IntN(c.N())
		}
		role := "follower"
		if victim == c.Leader() {
			role = "leader"
		}
		start, cut := h.now(), rng.IntN(2) == 0
		if cut {
			c.Cut(victim)
		} else {
			c.Kill(victim)
		}
		faults++
		pause(ctx, time.Duration(800+rng.IntN(1200))*time.Millisecond)
		what := fmt.Sprintf("kill %s %d", role, victim)
		if cut {
			c.Heal(victim)
			what = fmt.Sprintf("cut %s %d", role, victim)
		} else {
			c.Restart(victim)
		}
		h.note(start, what)
		t.Logf("nemesis: %s for %s", what, time.Duration(h.now()-start).Round(time.Millisecond))
		pause(ctx, time.Duration(500+rng.IntN(1000))*time.Millisecond)
	}
	return faults
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// checkLinearizable fails the test if the history is not linearizable (or
// the checker cannot decide within linCheckLimit), writing the
// visualization to the test's artifact directory (kept with go test
// -artifacts, a temporary directory otherwise).
func checkLinearizable(t *testing.T, h *history) {
	ops := h.complete()
	t0 := time.Now()
	res, info := porcupine.CheckOperationsVerbose(regModel, ops, linCheckLimit)
	t.Logf("porcupine: %s for %d operations in %s", res, len(ops), time.Since(t0).Round(time.Millisecond))
	if res == porcupine.Ok {
		return
	}
	info.AddAnnotations(h.notes)
	path := filepath.Join(t.ArtifactDir(), "history.html")
	if err := porcupine.VisualizePath(regModel, info, path); err != nil {
		t.Errorf("write the visualization: %v", err)
	}
	if res == porcupine.Illegal {
		t.Errorf("the history of %d operations is not linearizable; visualization: %s", len(ops), path)
		return
	}
	t.Errorf("porcupine could not decide within %s (%s); visualization: %s", linCheckLimit, res, path)
}

// TestRegisterModelRejectsStaleRead keeps the model honest: histories a
// correct register could not produce (a read of an overwritten value, a
// read of a value nobody wrote) are illegal, while a read of a write of
// unknown outcome, or of the value before a concurrent write, is not.
func TestRegisterModelRejectsStaleRead(t *testing.T) {
	w := func(client int, v uint64, call, ret int64, out any) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: regInput{write: true, value: v}, Call: call, Return: ret, Output: out}
	}
	r := func(client int, v uint64, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: regInput{}, Call: call, Return: ret, Output: v}
	}
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		ok   bool
	}{
		{"read after write", []porcupine.Operation{w(0, 3, 0, 10, true), r(1, 3, 20, 30)}, true},
		{"stale read after overwrite", []porcupine.Operation{w(0, 3, 0, 10, true), w(0, 4, 20, 30, true), r(1, 3, 40, 50)}, false},
		{"read of a value never written", []porcupine.Operation{w(0, 3, 0, 10, true), r(1, 5, 20, 30)}, false},
		{"read concurrent with a write", []porcupine.Operation{w(0, 3, 0, 10, true), w(0, 4, 20, 50, true), r(1, 3, 30, 40)}, true},
		{"unknown write seen later", []porcupine.Operation{w(0, 3, 0, 1000, nil), r(1, 3, 500, 510), r(1, 3, 600, 610)}, true},
		{"unknown write seen, then undone", []porcupine.Operation{w(0, 3, 0, 1000, nil), r(1, 3, 500, 510), r(1, 0, 600, 610)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(regModel, tc.ops); got != tc.ok {
				t.Errorf("linearizable = %v, want %v", got, tc.ok)
			}
		})
	}
}
