// Package dispatcher is the manager's side of the agents' sessions. Every
// manager serves it; only the leader holds sessions (the others answer with
// a Redirect to the leader).
//
// On the leader it registers each agent's node (ready), streams the node
// its assignment set (a full set, then sequence-numbered increments
// computed from the state whenever a task of the node changes), commits
// the agents' task statuses in batches, and decides node liveness from two
// signals: gossip (a member declared dead or leaving) and the session (gone
// and not back within the grace period).
package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shoal-sched/shoal/membership"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// DefaultGracePeriod is how long a node may be without a session before it
// is declared down. A killed agent's connection closes at once, so this is
// most of the failover time when gossip is slower; agents reconnect after a
// leader change within a few hundred milliseconds of the new leader taking
// over (its grace period starts then), well inside it.
const DefaultGracePeriod = 500 * time.Millisecond

const (
	// statusDelay is how long status reports are collected, across all
	// sessions, before they are committed in one Raft entry.
	statusDelay = 5 * time.Millisecond
	// sessionTTL ends a session that has been silent this long (agents
	// send heartbeats every 500 ms): it catches connections that died
	// without closing.
	sessionTTL = 10 * time.Second
	// failConfirm is how long a session must have been silent for a
	// gossip "dead" to take its node down at once. Agents send heartbeats
	// every 500 ms, so a live agent's session is never silent this long,
	// while a starved agent that misses a few gossip probes is: without
	// this check a busy machine would see false failures.
	failConfirm = 800 * time.Millisecond
	// helloTimeout bounds the wait for an agent's first message.
	helloTimeout = 10 * time.Second
	// subscribeBuffer is how many event batches the router may fall behind.
	subscribeBuffer = 1024
)

var (
	// ErrNotLeader: this manager is not the leader; the agent must go to
	// the leader (a Redirect says where, when known).
	ErrNotLeader = errors.New("dispatcher: not the leader")
	// ErrSuperseded: the node opened a newer session.
	ErrSuperseded = errors.New("dispatcher: a newer session of the node replaced this one")
	// ErrNodeDown: the node was declared down while its session was open.
	ErrNodeDown = errors.New("dispatcher: node declared down")
	// ErrSessionTimeout: the agent sent nothing for too long.
	ErrSessionTimeout = errors.New("dispatcher: session silent for too long")
	errStopped        = errors.New("dispatcher: stopped")
)

// Config configures a Dispatcher.
type Config struct {
	State   *raftstore.State
	Applier raftstore.Applier
	// IsLeader reports whether this manager leads now; LeaderAddr gives the
	// leader's gRPC address ("" when unknown), for redirects.
	IsLeader   func() bool
	LeaderAddr func() string
	// GracePeriod: see DefaultGracePeriod (used when zero).
	GracePeriod time.Duration
	Logger      *slog.Logger
}

// Dispatcher implements shoalpb.DispatcherServer.
type Dispatcher struct {
	shoalpb.UnimplementedDispatcherServer
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	sessions map[string]*session // by node ID
	lost     map[string]time.Time
	// suspects are nodes gossip declared dead while their session was
	// still talking: they go down once the session falls silent too.
	suspects map[string]time.Time
	nextID   uint64

	statusMu   sync.Mutex
	statuses   map[string]map[string]raftstore.TaskStatusUpdate // node → task → latest
	statusKick chan struct{}

	memberMu   sync.Mutex
	members    []membership.Event
	memberKick chan struct{}
}

// New returns a dispatcher; Run does the leader's duties.
func New(cfg Config) *Dispatcher {
	if cfg.GracePeriod <= 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{
		cfg: cfg, log: cfg.Logger.With("component", "dispatcher"), now: time.Now,
		sessions: make(map[string]*session), lost: make(map[string]time.Time), suspects: make(map[string]time.Time),
		statuses:   make(map[string]map[string]raftstore.TaskStatusUpdate),
		statusKick: make(chan struct{}, 1), memberKick: make(chan struct{}, 1),
	}
}

// Run does the leader's duties until ctx ends: it routes state changes to
// sessions, commits status batches and decides node liveness. It watches
// IsLeader itself: while this manager is not the leader it holds no
// sessions. It may run for the manager's whole life or only while leading.
func (d *Dispatcher) Run(ctx context.Context) error {
	defer d.closeSessions(errStopped)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.routeChanges(gctx) })
	g.Go(func() error { return d.flushStatuses(gctx) })
	g.Go(func() error { return d.watchLiveness(gctx) })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (d *Dispatcher) poke(nodeID string) {
	d.mu.Lock()
	s := d.sessions[nodeID]
	d.mu.Unlock()
	if s != nil {
		s.poke()
	}
}

func (d *Dispatcher) pokeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.sessions {
		s.poke()
	}
}

// attach registers s as its node's session, ending an older one.
func (d *Dispatcher) attach(s *session) {
	d.mu.Lock()
	d.nextID++
	s.id = d.nextID
	old := d.sessions[s.nodeID]
	d.sessions[s.nodeID] = s
	d.mu.Unlock()
	if old != nil {
		old.end(ErrSuperseded)
	}
}

// detach forgets s (if still current) and starts its node's grace period.
func (d *Dispatcher) detach(s *session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sessions[s.nodeID] == s {
		delete(d.sessions, s.nodeID)
		d.lost[s.nodeID] = s.lastSeen()
	}
}

// closeSessions ends every session with cause.
func (d *Dispatcher) closeSessions(cause error) {
	d.mu.Lock()
	all := make([]*session, 0, len(d.sessions))
	for _, s := range d.sessions {
		all = append(all, s)
	}
	d.mu.Unlock()
	for _, s := range all {
		s.end(cause)
	}
}

// SessionCount returns how many agents hold a session here.
func (d *Dispatcher) SessionCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.sessions)
}

// applyAll commits cmds in one entry and returns the first error of any.
func (d *Dispatcher) applyAll(ctx context.Context, cmds ...raftstore.Command) error {
	var cmd raftstore.Command = raftstore.Batch{Commands: cmds}
	if len(cmds) == 1 {
		cmd = cmds[0]
	}
	resp, err := d.cfg.Applier.Apply(ctx, cmd)
	if err != nil {
		return err
	}
	return batchError(resp)
}

// batchError returns the first error in a Batch's per-command results
// (a Batch itself never fails).
func batchError(resp raftstore.Response) error {
	results, ok := resp.Value.([]raftstore.BatchResult)
	if !ok {
		return nil
	}
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return errors.Join(errs...)
}
