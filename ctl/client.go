package ctl

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// target is one manager address: as the user wrote it, and as gRPC dials it.
type target struct {
	name string
	dial string
}

// parseHosts reads --host: comma-separated unix:///PATH, tcp://HOST:PORT or
// HOST:PORT entries.
func parseHosts(s string) ([]target, error) {
	var out []target
	for _, h := range strings.Split(s, ",") {
		h = strings.TrimSpace(h)
		t, err := parseHost(h)
		if err != nil {
			return nil, &api.FieldError{Field: "--host", Value: s, Err: err}
		}
		out = append(out, t)
	}
	return out, nil
}

func parseHost(h string) (target, error) {
	switch {
	case h == "":
		return target{}, errors.New("empty address in the list")
	case strings.HasPrefix(h, "unix://"):
		p := strings.TrimPrefix(h, "unix://")
		if !strings.HasPrefix(p, "/") {
			return target{}, fmt.Errorf("%q: a unix socket needs an absolute path, like unix:///run/shoal.sock", h)
		}
		return target{name: h, dial: "unix://" + p}, nil
	case strings.Contains(h, "://") && !strings.HasPrefix(h, "tcp://"):
		return target{}, fmt.Errorf("%q: want unix:///PATH or HOST:PORT", h)
	}
	addr := strings.TrimPrefix(h, "tcp://")
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return target{}, fmt.Errorf("%q: want unix:///PATH or HOST:PORT", h)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return target{}, fmt.Errorf("%q: port %q is not a number from 1 to 65535", h, port)
	}
	return target{name: addr, dial: "passthrough:///" + addr}, nil
}

// maxConnectTimeout bounds how long one manager may take to accept a
// connection before shoalctl moves on to the next.
const maxConnectTimeout = 5 * time.Second

// client calls the Control API on the first manager that answers. A manager
// that cannot be reached, or that answers Unavailable (no leader, no
// quorum), is skipped for the next one in --host order; the one that
// answered is tried first by later calls of the same command.
//
// Writes are retried on the next manager too: Unavailable means the write
// was not committed when the manager answered, but it may commit later (a
// leader that lost quorum and regained it). Every attempt of one call
// carries the same request ID, so the leader answers a retry of a write
// that did commit with its first result instead of applying it twice.
type client struct {
	tls            *tls.Config // nil: sockets only
	targets        []target
	connectTimeout time.Duration
	conns          []*grpc.ClientConn
	current        int
}

func newClient(targets []target, timeout time.Duration, cfg *tls.Config) *client {
	ct := timeout / time.Duration(len(targets))
	ct = min(max(ct, time.Second), maxConnectTimeout)
	return &client{tls: cfg, targets: targets, connectTimeout: ct, conns: make([]*grpc.ClientConn, len(targets))}
}

// Close closes every connection the client opened.
func (c *client) Close() {
	for i, conn := range c.conns {
		if conn != nil {
			conn.Close() // nothing useful can be done with a close error of a finished command
			c.conns[i] = nil
		}
	}
}

func (c *client) conn(i int) (*grpc.ClientConn, error) {
	if c.conns[i] != nil {
		return c.conns[i], nil
	}
	conn, err := grpc.NewClient(c.targets[i].dial, append(authz.DialOptions(c.tls),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: c.connectTimeout}),
	)...)
	if err != nil {
		return nil, err
	}
	c.conns[i] = conn
	return conn, nil
}

// call runs fn against one manager after another until one answers with
// anything but Unavailable. fn makes one RPC.
func (c *client) call(ctx context.Context, fn func(context.Context, shoalpb.ControlClient) error) error {
	ctx = metadata.AppendToOutgoingContext(ctx, shoalpb.RequestIDKey, newRequestID())
	var tried []string
	for n := range len(c.targets) {
		i := (c.current + n) % len(c.targets)
		conn, err := c.conn(i)
		if err == nil {
			err = fn(ctx, shoalpb.NewControlClient(conn))
			if status.Code(err) != codes.Unavailable {
				c.current = i
				return err
			}
		}
		tried = append(tried, fmt.Sprintf("%s: %s", c.targets[i].name, statusMessage(err)))
		if ctx.Err() != nil {
			break
		}
	}
	return &unavailableError{tried: tried}
}

// unavailableError says that no manager could serve a request.
type unavailableError struct {
	tried []string
}

func (e *unavailableError) Error() string {
	return fmt.Sprintf("no manager could answer (%s); check that a manager is running at --host "+
		"and that the cluster has a leader: shoalctl cluster status --stale", strings.Join(e.tried, "; "))
}

func statusMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return explainTransport(st.Message())
	}
	return explainTransport(err.Error())
}

// newRequestID returns the ID of one call (see shoalpb.RequestIDKey): 128
// random bits, so that no two calls from any clients ever share one. Reads
// carry it too; the managers use it only for writes.
func newRequestID() string { return rand.Text() }
