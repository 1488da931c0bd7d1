// Package dispatcher is the manager's side of the agents' sessions. Every
// manager serves it; only the leader holds sessions (the others answer with
// a Redirect to the leader).
//
// On the leader it does three jobs, each its own part and each a leader
// duty run by Run:
//
//   - sessions (session.go, sessions.go, assignments.go): it registers each
//     agent's node (ready), streams the node its assignment set (a full
//     set, then sequence-numbered increments computed from the state
//     whenever a task of the node changes) and answers the agent's
//     heartbeats, so that an agent notices a dead or cut-off leader;
//   - the status batcher (status.go): it commits the agents' task statuses
//     in bounded batches, refusing a bad report alone;
//   - liveness (liveness.go, holds.go): it decides when a node is down from
//     two signals, gossip (a member declared dead or leaving) and the
//     session (gone and not back within the grace period); it gives the
//     nodes of an earlier leader a reconnect window, and holds the tasks of
//     a node whose agent said it is restarting.
//
// None of them holds a lock while it commits to Raft: without a quorum a
// commit waits for seconds, and sessions must keep answering meanwhile.
package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/membership"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// DefaultGracePeriod is how long a node may be without a session before it
// is declared down. A killed agent's connection closes at once, so this is
// most of the failover time when gossip is slower.
const DefaultGracePeriod = 500 * time.Millisecond

// DefaultReconnectWindow is how long a new leader waits for the agents of
// nodes that were ready to open a session with it before it may declare
// them down (unless gossip already says they are gone). An agent needs
// about a second to notice that the old leader went silent (three missed
// heartbeat answers) and a few hundred milliseconds to find the new one;
// four seconds leave room for a loaded machine and a slow election.
const DefaultReconnectWindow = 4 * time.Second

const (
	// sessionTTL ends a session whose agent sent nothing this long. Agents
	// send a heartbeat at least every 500 ms (300 ms by default), so only a
	// connection that died without closing, or an agent stalled for
	// seconds, is this silent; the ended session's node then gets the
	// grace period like any other. It is set for the shortest heartbeat
	// period and grows with the period (pacing.go), as failConfirm does.
	sessionTTL = 2 * time.Second
	// failConfirm is how long a session must have been silent for a
	// gossip "dead" to take its node down at once, and how long a probed
	// session has to answer (liveness.probeWait). A live agent's session
	// is never silent this long, while a starved agent that misses a few
	// gossip probes may be: without this check a busy machine would see
	// false failures.
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
	// ReconnectWindow: see DefaultReconnectWindow (used when zero). It is
	// never shorter than GracePeriod.
	ReconnectWindow time.Duration
	// Gossip returns this manager's current gossip view (nil: no gossip).
	// A new leader acts on it, not on events it saw while following.
	Gossip func() membership.View
	// Identify returns the node ID the certificate of a session's peer
	// names (the guard put it in the stream's context); a hello naming
	// another node is refused. Nil trusts the node ID in the hello: only
	// tests that run the dispatcher without TLS leave it nil.
	Identify func(ctx context.Context) (nodeID string, err error)
	Logger   *slog.Logger
	// Metrics receives the dispatcher's figures (nil: none are kept).
	Metrics *Metrics
}

// Dispatcher implements shoalpb.DispatcherServer.
type Dispatcher struct {
	shoalpb.UnimplementedDispatcherServer
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	sessions *sessionTable
	live     *liveness
	pace     *pacer
	statuses *statusBatcher
	leaders  *leaderWait
}

// New returns a dispatcher; Run does the leader's duties.
func New(cfg Config) *Dispatcher {
	if cfg.GracePeriod <= 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	if cfg.ReconnectWindow <= 0 {
		cfg.ReconnectWindow = DefaultReconnectWindow
	}
	cfg.ReconnectWindow = max(cfg.ReconnectWindow, cfg.GracePeriod)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := cfg.Logger.With("component", "dispatcher")
	d := &Dispatcher{cfg: cfg, log: log, now: time.Now, sessions: newSessionTable()}
	cfg.Metrics.follow(d.sessions)
	d.pace = newPacer(d.sessions, d.now, func() int { return sessionNodes(cfg.State) })
	d.live = newLiveness(cfg, d.sessions, log, d.now)
	d.live.pace = d.pace
	d.statuses = newStatusBatcher(cfg, log, d.now)
	d.leaders = newLeaderWait(func() bool { return cfg.IsLeader() || cfg.LeaderAddr() != "" })
	return d
}

// Run does the leader's duties until ctx ends: it routes state changes to
// sessions, commits status batches and decides node liveness. It watches
// IsLeader itself: while this manager is not the leader it holds no
// sessions. It may run for the manager's whole life or only while leading.
func (d *Dispatcher) Run(ctx context.Context) error {
	defer d.sessions.closeAll(errStopped)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.routeChanges(gctx) })
	g.Go(func() error { return d.statuses.run(gctx) })
	g.Go(func() error { return d.live.run(gctx) })
	g.Go(func() error { return d.watchKeys(gctx) })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// sessionNodes counts the nodes that should hold a session: those not
// down (nor drained away by an operator: a drained node's agent still
// holds one).
func sessionNodes(state *raftstore.State) int {
	if state == nil {
		return 0
	}
	n := 0
	for node := range state.Read().EachNode() {
		if node.Status != api.NodeDown {
			n++
		}
	}
	return n
}

// ObserveMember feeds one gossip event to the liveness check. It never
// blocks. While this manager does not lead the event is dropped: a new
// leader starts from the gossip view of the moment, not from a backlog.
func (d *Dispatcher) ObserveMember(ev membership.Event) { d.live.observe(ev) }

// SessionCount returns how many agents hold a session here.
func (d *Dispatcher) SessionCount() int { return d.sessions.count() }

func (d *Dispatcher) poke(nodeID string) {
	if s := d.sessions.get(nodeID); s != nil {
		s.poke()
	}
}

func (d *Dispatcher) pokeAll() {
	for _, s := range d.sessions.all() {
		s.poke()
	}
}

// commit applies cmds in one entry. It returns each command's answer (nil
// when it applied, else the state's refusal), or an error when the entry
// did not commit (nothing applied, or it is uncertain whether it did).
func commit(ctx context.Context, applier raftstore.Applier, cmds []raftstore.Command) ([]error, error) {
	if len(cmds) == 1 {
		_, err := applier.Apply(ctx, cmds[0])
		if err != nil && !refused(err) {
			return nil, err
		}
		return []error{err}, nil
	}
	resp, err := applier.Apply(ctx, raftstore.Batch{Commands: cmds})
	if err != nil {
		return nil, err
	}
	results, _ := resp.Value.([]raftstore.BatchResult)
	errs := make([]error, len(cmds))
	for i := range errs {
		if i < len(results) {
			errs[i] = results[i].Err
		}
	}
	return errs, nil
}

// refused reports whether err is the state's answer to a committed command
// rather than a failure to commit it.
func refused(err error) bool {
	for _, e := range []error{raftstore.ErrNotFound, raftstore.ErrConflict, raftstore.ErrInvalid, raftstore.ErrAlreadyExists} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// commitOne applies one command.
func commitOne(ctx context.Context, applier raftstore.Applier, cmd raftstore.Command) error {
	_, err := applier.Apply(ctx, cmd)
	return err
}
