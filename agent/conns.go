package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

const (
	// warmSpread bounds the random delay before an agent connects to the
	// managers it holds no session with: a thousand agents that joined
	// together do not all handshake with the followers at once.
	warmSpread = 10 * time.Second
	// warmPrune is how long a connection opened ahead may fail before it
	// is closed: its manager is gone, and gRPC would retry it every
	// second for as long as the agent runs.
	warmPrune = 30 * time.Second
)

var errConnsClosed = errors.New("agent: connections closed")

// connCache keeps one client connection per manager address.
type connCache struct {
	tls   *tls.Config // nil: plaintext (tests)
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // nil once closed
	// warming says a warm runs; next is what the one asked for while it
	// ran (nil: nothing) wants warmed after it.
	warming bool
	next    []string
}

func newConnCache(cfg *tls.Config) *connCache {
	return &connCache{tls: cfg, conns: make(map[string]*grpc.ClientConn)}
}

func (c *connCache) get(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns == nil {
		return nil, errConnsClosed
	}
	if cc := c.conns[addr]; cc != nil {
		return cc, nil
	}
	cc, err := dial(addr, c.tls)
	if err != nil {
		return nil, err
	}
	c.conns[addr] = cc
	return cc, nil
}

// connecting reports whether the connection to addr is still being set up
// (dialling, in the TLS handshake, or waiting to retry one).
func (c *connCache) connecting(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.conns[addr]
	if cc == nil {
		return false
	}
	switch cc.GetState() {
	case connectivity.Connecting, connectivity.TransientFailure:
		return true
	}
	return false
}

// drop closes and forgets the connection to addr.
func (c *connCache) drop(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.conns[addr]; cc != nil {
		cc.Close()
		delete(c.conns, addr)
	}
}

func (c *connCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range c.conns {
		cc.Close()
	}
	c.conns = nil
}

// dial makes a client connection that retries a lost manager quickly
// (gRPC's default backoff would wait up to two minutes).
func dial(addr string, cfg *tls.Config) (*grpc.ClientConn, error) {
	cc, err := grpc.NewClient(addr, append(authz.DialOptions(cfg), shoalpb.SessionKeepalive(),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: handshakeTimeout,
		}),
		// A connection opened ahead (warm) carries no call until the next
		// leader change, which may be months away: it must not be closed
		// for being idle.
		grpc.WithIdleTimeout(0))...)
	if err != nil {
		return nil, fmt.Errorf("manager address %s: %w", addr, err)
	}
	return cc, nil
}

// warm connects, in the background, to each of addrs, after a random
// delay of up to spread, and closes the connections it opened that are not
// connected within prune (a manager that is gone: gRPC would retry it
// every second for as long as the agent runs). A leader change then finds
// the agent connected to the survivors: the thousand agents that open
// sessions on the new leader, and first ask the follower, need no TLS
// handshake with either at the moment both are busiest. One warm runs at
// a time; a call while it runs is done after it.
func (c *connCache) warm(ctx context.Context, addrs []string, spread, prune time.Duration, log *slog.Logger) {
	c.mu.Lock()
	c.next = append([]string{}, addrs...)
	if c.warming {
		c.mu.Unlock()
		return
	}
	c.warming = true
	c.mu.Unlock()
	go func() {
		for {
			c.mu.Lock()
			addrs := c.next
			c.next = nil
			if addrs == nil || ctx.Err() != nil {
				c.warming = false
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			c.warmOnce(ctx, addrs, spread, prune, log)
		}
	}()
}

func (c *connCache) warmOnce(ctx context.Context, addrs []string, spread, prune time.Duration, log *slog.Logger) {
	if spread > 0 && !sleepCtx(ctx, rand.N(spread)) {
		return
	}
	conns := map[string]*grpc.ClientConn{}
	opened := map[string]bool{}
	for _, addr := range addrs {
		opened[addr] = !c.has(addr)
		cc, err := c.get(addr)
		if err != nil {
			return
		}
		cc.Connect()
		conns[addr] = cc
	}
	pctx, cancel := context.WithTimeout(ctx, prune)
	defer cancel()
	var ready, dropped []string
	for addr, cc := range conns {
		if waitReady(pctx, cc) {
			ready = append(ready, addr)
		} else if ctx.Err() == nil && opened[addr] && c.dropIf(addr, cc) {
			dropped = append(dropped, addr)
		}
	}
	if ctx.Err() == nil {
		log.Info("connected ahead to the other managers", "ready", ready, "closed", dropped)
	}
}

// waitReady waits until cc is connected (true) or ctx ends.
func waitReady(ctx context.Context, cc *grpc.ClientConn) bool {
	for {
		s := cc.GetState()
		if s == connectivity.Ready {
			return true
		}
		if s == connectivity.Shutdown || !cc.WaitForStateChange(ctx, s) {
			return false
		}
	}
}

func (c *connCache) has(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns[addr] != nil
}

// dropIf closes the connection to addr if it is still cc and not
// connected.
func (c *connCache) dropIf(addr string, cc *grpc.ClientConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns[addr] != cc || cc.GetState() == connectivity.Ready {
		return false
	}
	cc.Close()
	delete(c.conns, addr)
	return true
}
