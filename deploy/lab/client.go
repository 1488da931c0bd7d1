package lab

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// client is a Control client that tries each manager's unix socket in turn,
// so it keeps working while a manager is down.
type client struct {
	conns []*grpc.ClientConn
	ctl   []shoalpb.ControlClient
	hosts []*Host // the manager host behind each client
	// fresh makes reads go through the leader (a barrier) instead of each
	// manager's own state, which a cut manager keeps answering from.
	fresh bool
}

// dial returns a client of every manager, reading their own (stale) state.
func (l *Lab) dial() (*client, error) { return l.dialManagers(false) }

// dialManagers returns a client of the managers other than those named in
// skip; fresh reads go through the leader.
func (l *Lab) dialManagers(fresh bool, skip ...string) (*client, error) {
	c := &client{fresh: fresh}
	for _, h := range l.ByRole(RoleManager) {
		if slices.Contains(skip, h.Name) {
			continue
		}
		s := "unix://" + filepath.Join(h.Dir(l), "control.sock")
		conn, err := grpc.NewClient(s, grpc.WithTransportCredentials(insecure.NewCredentials()), shoalpb.CallOptions())
		if err != nil {
			c.close()
			return nil, fmt.Errorf("dial %s: %w", s, err)
		}
		c.conns = append(c.conns, conn)
		c.ctl = append(c.ctl, shoalpb.NewControlClient(conn))
		c.hosts = append(c.hosts, h)
	}
	if len(c.ctl) == 0 {
		return nil, fmt.Errorf("no manager left to dial after skipping %v", skip)
	}
	return c, nil
}

func (c *client) close() {
	for _, conn := range c.conns {
		_ = conn.Close()
	}
}

// each calls fn on each manager until one answers without error.
func (c *client) each(ctx context.Context, fn func(context.Context, shoalpb.ControlClient) error) error {
	var errs []error
	for _, ctl := range c.ctl {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := fn(cctx, ctl)
		cancel()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *client) tasks(ctx context.Context, service string) ([]*shoalpb.Task, error) {
	var out []*shoalpb.Task
	err := c.each(ctx, func(ctx context.Context, ctl shoalpb.ControlClient) error {
		r, err := ctl.ListTasks(ctx, &shoalpb.ListTasksRequest{Service: service, Stale: !c.fresh})
		if err != nil {
			return err
		}
		out = r.GetTasks()
		return nil
	})
	return out, err
}

func (c *client) nodes(ctx context.Context) ([]*shoalpb.Node, error) {
	var out []*shoalpb.Node
	err := c.each(ctx, func(ctx context.Context, ctl shoalpb.ControlClient) error {
		r, err := ctl.ListNodes(ctx, &shoalpb.ListNodesRequest{Stale: !c.fresh})
		if err != nil {
			return err
		}
		out = nil
		for _, n := range r.GetNodes() {
			out = append(out, n.GetNode())
		}
		return nil
	})
	return out, err
}

// waitManagers waits until a leader reports n managers in its Raft
// configuration.
func (l *Lab) waitManagers(ctx context.Context, n int, timeout time.Duration) error {
	c, err := l.dial()
	if err != nil {
		return err
	}
	defer c.close()
	return waitFor(ctx, timeout, func() error {
		return c.each(ctx, func(ctx context.Context, ctl shoalpb.ControlClient) error {
			st, err := ctl.ClusterStatus(ctx, &shoalpb.ClusterStatusRequest{})
			if err != nil {
				return err
			}
			if st.GetLeaderId() == "" || len(st.GetManagers()) < n {
				return fmt.Errorf("%d of %d managers joined", len(st.GetManagers()), n)
			}
			return nil
		})
	})
}

// waitNodesReady waits until n nodes are ready.
func (l *Lab) waitNodesReady(ctx context.Context, n int, timeout time.Duration) error {
	c, err := l.dial()
	if err != nil {
		return err
	}
	defer c.close()
	return waitFor(ctx, timeout, func() error {
		nodes, err := c.nodes(ctx)
		if err != nil {
			return err
		}
		var ready []string
		for _, nd := range nodes {
			if nd.GetStatus() == "ready" {
				ready = append(ready, nd.GetHostname())
			}
		}
		if len(ready) < n {
			return fmt.Errorf("%d of %d nodes ready (%s)", len(ready), n, strings.Join(ready, ", "))
		}
		return nil
	})
}
