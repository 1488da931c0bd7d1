// Package membership is shoal's gossip layer: a small wrapper around
// hashicorp/memberlist that advertises each node's description (Meta) and
// turns memberlist's callbacks into typed join, update, leave and fail
// events. It carries liveness only; desired state lives in Raft.
//
// memberlist v0.7.0 reports a failure and a graceful leave through the same
// callback, so Leave first spreads Meta.Leaving and the receivers use it to
// tell EventLeave from EventFail.
package membership

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

var (
	// ErrClosed is returned by calls on a closed Member.
	ErrClosed = errors.New("gossip member closed")
	// ErrLeft is returned by calls that need membership after Leave.
	ErrLeft = errors.New("gossip member has left the cluster")
	// ErrJoin is returned when no given address could be joined.
	ErrJoin = errors.New("gossip join failed")
	// ErrBroadcast is returned when memberlist did not confirm that an
	// update went out in time; the update is applied locally and keeps
	// spreading.
	ErrBroadcast = errors.New("gossip broadcast not confirmed")
)

// Member is this process's membership in the gossip cluster.
type Member struct {
	cfg    Config
	log    *slog.Logger
	list   *memberlist.Memberlist
	meta   *metaDelegate
	events *eventDelegate
	addr   string
	// keyring is memberlist's (nil without encryption); SetKeys changes it.
	keyring *memberlist.Keyring

	// mu serialises UpdateMeta, Leave and Close: memberlist panics on a
	// Leave after Shutdown.
	mu        sync.Mutex
	current   Meta
	left      bool
	closed    bool
	stopWatch func() bool
}

// Stats counts what the member dropped.
type Stats struct {
	// BadMeta counts peer metadata that failed to decode or validate.
	BadMeta uint64
	// DroppedEvents counts events lost because the Events channel was full.
	DroppedEvents uint64
}

// Start creates the member, binds its UDP and TCP listeners and joins
// cfg.Join (failing if none answers). The member stops as with Close when
// ctx ends; call Leave before that for a graceful exit.
func Start(ctx context.Context, cfg Config) (*Member, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "gossip")
	cfg.Logger = log
	enc, err := EncodeMeta(cfg.Meta)
	if err != nil {
		return nil, err
	}
	d := &delegates{
		meta:     &metaDelegate{log: log, encoded: enc},
		events:   newEventDelegate(log, cfg.EventBuffer),
		conflict: &conflictDelegate{log: log},
	}
	mc, err := cfg.memberlistConfig(d)
	if err != nil {
		return nil, err
	}
	list, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.BindAddr, err)
	}
	m := &Member{
		cfg: cfg, log: log, list: list, meta: d.meta, events: d.events,
		addr: list.LocalNode().Address(), current: cfg.Meta,
		// Create builds the keyring from SecretKey into mc when Key was given.
		keyring: mc.Keyring,
	}
	if len(cfg.Join) > 0 {
		if _, err := m.Join(cfg.Join); err != nil {
			return nil, errors.Join(err, m.Close())
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, errors.Join(fmt.Errorf("start gossip: %w", err), m.Close())
	}
	m.mu.Lock()
	m.stopWatch = context.AfterFunc(ctx, func() {
		if err := m.Close(); err != nil {
			m.log.Error("stopping gossip", "err", err)
		}
	})
	m.mu.Unlock()
	log.Info("gossip started", "node_id", cfg.NodeName, "addr", m.addr, "bind_addr", cfg.BindAddr,
		"encrypted", len(cfg.Key) > 0 || len(cfg.Keys) > 0, "members", list.NumMembers())
	return m, nil
}

// Addr is the gossip address peers reach this member at (host:port), with
// the port actually bound when BindAddr asked for port 0.
func (m *Member) Addr() string { return m.addr }

// Events delivers membership changes, this member's included. It is closed
// by Close. Events never block gossip: when the buffer is full new events
// are dropped and counted (Stats), so a reader that must not miss a change
// should also reconcile against Members.
func (m *Member) Events() <-chan Event { return m.events.ch }

// Members returns the live members whose metadata was accepted, this one
// included, sorted by node ID.
func (m *Member) Members() []Meta { return m.events.members() }

// View returns the live members and those that failed or left and have not
// come back since, as this member sees them now.
func (m *Member) View() View { return m.events.view() }

// LocalMeta returns what this member currently advertises.
func (m *Member) LocalMeta() Meta {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current.Clone()
}

// Stats returns the counters of dropped input and output.
func (m *Member) Stats() Stats {
	return Stats{BadMeta: m.events.badMeta.Load(), DroppedEvents: m.events.dropped.Load()}
}

// Join contacts the given gossip addresses (host:port) and merges state
// with them. It returns how many answered, and an error wrapping ErrJoin
// when none did. It may be called at any time, e.g. once an agent learns
// where the managers gossip.
func (m *Member) Join(addrs []string) (int, error) {
	if len(addrs) == 0 {
		return 0, fmt.Errorf("%w: join list is empty", ErrInvalidConfig)
	}
	for _, a := range addrs {
		if a == "" {
			return 0, fmt.Errorf("%w: join list %q has an empty address", ErrInvalidConfig, addrs)
		}
	}
	if err := m.usable(); err != nil {
		return 0, err
	}
	n, err := m.list.Join(addrs)
	if err != nil {
		return n, fmt.Errorf("%w: none of %q answered: %w", ErrJoin, addrs, err)
	}
	m.log.Info("joined gossip", "contacted", n, "members", m.list.NumMembers())
	return n, nil
}

func (m *Member) usable() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return ErrClosed
	case m.left:
		return ErrLeft
	}
	return nil
}

// UpdateMeta replaces what this member advertises and waits until
// memberlist has sent it out. KeysVersion is kept (SetKeys owns it). An
// empty NodeID means this member's; another
// node's ID, Leaving (set only by Leave) or metadata that does not encode is
// refused and changes nothing.
func (m *Member) UpdateMeta(meta Meta) error {
	meta = meta.Clone()
	meta.NodeID = cmp.Or(meta.NodeID, m.cfg.NodeName)
	if meta.NodeID != m.cfg.NodeName {
		return fmt.Errorf("%w: node_id %q differs from this member's %q", ErrInvalidMeta, meta.NodeID, m.cfg.NodeName)
	}
	if meta.Leaving {
		return fmt.Errorf("%w: leaving is set by Leave, not UpdateMeta", ErrInvalidMeta)
	}
	enc, err := EncodeMeta(meta)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.left {
		return ErrLeft
	}
	if meta.KeysVersion != m.current.KeysVersion {
		meta.KeysVersion = m.current.KeysVersion
		if enc, err = EncodeMeta(meta); err != nil {
			return err
		}
	}
	m.current = meta
	m.meta.set(enc)
	if err := m.list.UpdateNode(broadcastTimeout); err != nil {
		return fmt.Errorf("%w: metadata of %s after %v: %w", ErrBroadcast, meta.NodeID, broadcastTimeout, err)
	}
	return nil
}

// leaveFlagRounds is how many gossip intervals Leave lets the leaving
// flag spread before it leaves.
const leaveFlagRounds = 4

// Leave announces a graceful exit: it advertises Meta.Leaving, waits for
// that update to go out, then tells the cluster it left, all within about
// timeout (which must be positive). Peers report EventLeave instead of
// EventFail. Close must still be called afterwards.
func (m *Member) Leave(timeout time.Duration) error {
	if timeout <= 0 {
		return fmt.Errorf("%w: leave timeout %v must be positive", ErrInvalidConfig, timeout)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.left {
		return nil
	}
	deadline := time.Now().Add(timeout)
	meta := m.current.Clone()
	meta.Leaving = true
	enc, err := EncodeMeta(meta)
	if err != nil {
		return err
	}
	m.current = meta
	m.meta.set(enc)
	var errs []error
	if err := m.list.UpdateNode(untilDeadline(deadline)); err != nil {
		errs = append(errs, fmt.Errorf("%w: leaving flag of %s: %w", ErrBroadcast, meta.NodeID, err))
	}
	// The flag rides on gossip while the leave itself is one message: give
	// the flag a few gossip rounds to reach every member first, so that
	// they see a leave, not a failure (memberlist reports both the same way).
	// The lock is let go meanwhile; marking the member left first makes an
	// UpdateMeta in the pause fail with ErrLeft instead of dropping the flag.
	pause := min(leaveFlagRounds*m.cfg.GossipInterval, untilDeadline(deadline)/2)
	m.left = true
	m.mu.Unlock()
	time.Sleep(pause)
	m.mu.Lock()
	if m.closed {
		return errors.Join(append(errs, ErrClosed)...)
	}
	if err := m.list.Leave(untilDeadline(deadline)); err != nil {
		errs = append(errs, fmt.Errorf("%w: leave of %s: %w", ErrBroadcast, meta.NodeID, err))
	}
	m.log.Info("left gossip", "node_id", meta.NodeID, "confirmed", len(errs) == 0)
	return errors.Join(errs...)
}

// untilDeadline never returns zero or less: memberlist reads that as "wait
// forever".
func untilDeadline(deadline time.Time) time.Duration {
	return max(time.Until(deadline), time.Millisecond)
}

// Close stops gossip at once, without a leave: peers will report
// EventFail. It closes the Events channel. Calling it again does nothing.
func (m *Member) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	if m.stopWatch != nil {
		m.stopWatch()
	}
	err := m.list.Shutdown()
	m.events.close()
	m.log.Info("gossip stopped", "node_id", m.cfg.NodeName)
	if err != nil {
		return fmt.Errorf("stop gossip of %s: %w", m.cfg.NodeName, err)
	}
	return nil
}
