package ca_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/ca"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// fakeClock is a clock tests step by hand (pki.Clock).
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
			continue
		}
		kept = append(kept, w)
	}
	c.waiters = kept
}

// Waiting is how many timers are pending.
func (c *fakeClock) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// caHarness is one manager's NodeCA over TLS on loopback, over a local
// state holding a CA made at bootstrap, counting the calls it gets.
type caHarness struct {
	t       *testing.T
	state   *raftstore.State
	applier *raftstore.LocalApplier
	root    *pki.RootCA
	mgr     *pki.Credentials // the manager's own credentials
	addr    string
	srv     *ca.Server
	issues  atomic.Int64 // IssueNodeCertificate calls that arrived
	renews  atomic.Int64
	clock   func() time.Time
}

func newCAHarness(t *testing.T, clock func() time.Time, settings api.ClusterSettings) *caHarness {
	t.Helper()
	if clock == nil {
		clock = time.Now
	}
	h := &caHarness{t: t, state: raftstore.NewState(), clock: clock}
	h.applier = raftstore.NewLocalApplier(h.state)
	var err error
	// The root predates the expired certificates tests make.
	h.root, err = pki.NewRootCA("cluster-test", time.Now().Add(-100*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ca.NewClusterCA(h.root)
	if err != nil {
		t.Fatal(err)
	}
	h.apply(raftstore.SetCluster{Cluster: api.ClusterInfo{ID: "cluster-test"}})
	if settings != (api.ClusterSettings{}) {
		h.apply(raftstore.SetCluster{Cluster: api.ClusterInfo{ID: "cluster-test"}, Settings: &settings})
	}
	h.apply(raftstore.SetCA{CA: rec})
	h.mgr = h.issueCreds(pki.Identity{NodeID: "m1", Role: pki.RoleManager}, time.Now(), 24*time.Hour)
	h.serve()
	return h
}

func (h *caHarness) apply(cmd raftstore.Command) raftstore.Response {
	h.t.Helper()
	resp, err := h.applier.Apply(context.Background(), cmd)
	if err != nil {
		h.t.Fatalf("apply %T: %v", cmd, err)
	}
	return resp
}

func (h *caHarness) record() api.ClusterCA {
	rec, ok := h.state.Read().CA()
	if !ok {
		h.t.Fatal("no CA in the state")
	}
	return rec
}

// issueCreds signs credentials straight from the CA record (what the
// harness needs to play a node that joined earlier).
func (h *caHarness) issueCreds(id pki.Identity, now time.Time, life time.Duration) *pki.Credentials {
	h.t.Helper()
	rec := h.record()
	keyPEM, csr, err := pki.NewKeyAndCSR()
	if err != nil {
		h.t.Fatal(err)
	}
	cert, err := ca.Issue(rec, api.ClusterSettings{}, csr, id, life, now)
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := pki.NewCredentials(cert, keyPEM, ca.TrustedRoots(rec))
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *caHarness) serve() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	count := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		switch info.FullMethod {
		case shoalpb.NodeCA_IssueNodeCertificate_FullMethodName:
			h.issues.Add(1)
		case shoalpb.NodeCA_RenewNodeCertificate_FullMethodName:
			h.renews.Add(1)
		}
		return next(ctx, req)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(h.mgr.ServerTLS())), grpc.UnaryInterceptor(count))
	h.srv = ca.NewServer(ca.Config{State: h.state, Clock: h.clock, Self: h.mgr})
	h.srv.Register(gs)
	go func() { _ = gs.Serve(ln) }()
	h.t.Cleanup(gs.Stop)
	h.addr = ln.Addr().String()
}

func (h *caHarness) tokens() (worker, manager string) {
	h.t.Helper()
	w, m, err := ca.Tokens(h.record())
	if err != nil {
		h.t.Fatal(err)
	}
	return w.String(), m.String()
}
