package agent

import (
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/shoal-sched/shoal/internal/poll"
)

// TestWarmConnectsAndPrunes: warm connects to every manager that has no
// connection yet, keeps those that answer, and closes the one whose
// manager is gone once the prune delay has passed.
func TestWarmConnectsAndPrunes(t *testing.T) {
	var live []string
	for range 2 {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
		live = append(live, lis.Addr().String())
	}
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := gone.Addr().String()
	gone.Close() // nothing listens there: every dial is refused

	c := newConnCache(nil)
	t.Cleanup(c.close)
	c.warm(t.Context(), append([]string{dead}, live...), 0, 2*time.Second, slog.New(slog.DiscardHandler))
	poll.Until(t, 10*time.Second, func() error {
		for _, addr := range live {
			if st := c.state(addr); st != connectivity.Ready {
				return fmt.Errorf("connection to %s is %v, want READY", addr, st)
			}
		}
		return nil
	})
	if !c.has(dead) {
		t.Fatalf("warm opened no connection to %s", dead)
	}
	poll.Until(t, 10*time.Second, func() error {
		if c.has(dead) {
			return fmt.Errorf("the connection to the gone manager %s is still kept (%v)", dead, c.state(dead))
		}
		return nil
	})
	for _, addr := range live {
		if st := c.state(addr); st != connectivity.Ready {
			t.Errorf("connection to %s is %v after the prune, want READY", addr, st)
		}
	}
}

func (c *connCache) state(addr string) connectivity.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.conns[addr]; cc != nil {
		return cc.GetState()
	}
	return connectivity.Shutdown
}
