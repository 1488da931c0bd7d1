package manager

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"

	"google.golang.org/grpc"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/manager/webui"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// listenUI binds the web UI's address, so a bad --ui-addr fails at start.
func listenUI(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--ui-addr %q: %w", addr, err)
	}
	return l, nil
}

// UIAddr is the web UI's address ("" when it is off).
func (m *Manager) UIAddr() string {
	if m.ui == nil {
		return ""
	}
	return m.ui.Addr().String()
}

// serveUI serves the web UI until ctx ends. Its gateway is a client of
// this manager's own gRPC server over an in-process connection, with the
// manager's certificate: the guard believes the caller the gateway
// forwards (the browser's certificate, or the read-only viewer) and
// judges every call by that caller's role, as it judges a follower's
// forwarded call.
func (m *Manager) serveUI(ctx context.Context, gs *grpc.Server, clientTLS *tls.Config) error {
	self := newSelfListener()
	go gs.Serve(self) // ends when gs stops, which closes self
	conn, err := grpc.NewClient("passthrough:///self", append(authz.DialOptions(clientTLS),
		grpc.WithContextDialer(self.dial))...)
	if err != nil {
		return fmt.Errorf("web UI: dial the control API: %w", err)
	}
	defer conn.Close()
	var uiTLS *tls.Config
	if m.cfg.UITLS && !m.cfg.Plaintext {
		uiTLS = m.creds.ServerTLS()
	}
	m.log.Info("web UI serving", "ui_addr", m.UIAddr(), "tls", uiTLS != nil)
	ui := webui.New(webui.Config{Control: shoalpb.NewControlClient(conn), TLS: uiTLS, Logger: m.cfg.Logger})
	return ui.Serve(ctx, m.ui)
}

// selfListener hands the gRPC server connections made inside the
// process (net.Pipe), for the web UI's gateway: it reaches the server
// without a port and whatever address the manager listens on.
type selfListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newSelfListener() *selfListener {
	return &selfListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *selfListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *selfListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *selfListener) Addr() net.Addr { return selfAddr{} }

func (l *selfListener) dial(ctx context.Context, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		err := net.ErrClosed
		client.Close()
		server.Close()
		return nil, err
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, ctx.Err()
	}
}

type selfAddr struct{}

func (selfAddr) Network() string { return "pipe" }
func (selfAddr) String() string  { return "self" }
