package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// uiDialTimeout bounds one dial of a manager's UI inside its host.
const uiDialTimeout = 2 * time.Second

// ForwardUI serves manager host name's web UI on listen, a loopback
// address of the root namespace, until ctx ends. Each connection is
// relayed to the UI on the manager host's own loopback, dialled from
// inside that host's namespace: the root namespace never dials a lab
// address.
func (l *Lab) ForwardUI(ctx context.Context, name, listen string, logf func(string, ...any)) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	if h.Role != RoleManager {
		return fmt.Errorf("%s is a %s host; the web UI is served by the managers (%v)", name, h.Role, l.names(RoleManager))
	}
	ln, err := listenLoopback(listen)
	if err != nil {
		return err
	}
	logf("web UI of %s: http://%s/ (ctrl-c ends the forward)", name, ln.Addr())
	return forward(ctx, ln, func() (net.Conn, error) { return dialIn(h.NS, fmt.Sprintf("127.0.0.1:%d", UIPort)) })
}

func (l *Lab) names(role string) []string {
	var out []string
	for _, h := range l.ByRole(role) {
		out = append(out, h.Name)
	}
	return out
}

// listenLoopback listens on addr, which must be a loopback address: the
// forward is for this machine's browser alone.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: want host:port: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("--listen %q: the forward listens on a loopback address only (127.0.0.1:PORT)", addr)
	}
	return net.Listen("tcp", addr)
}

// forward relays every connection accepted on ln to a connection from
// dial, until ctx ends.
func forward(ctx context.Context, ln net.Listener, dial func() (net.Conn, error)) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Go(func() {
			defer c.Close()
			up, err := dial()
			if err != nil {
				return
			}
			defer up.Close()
			stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
			defer stop()
			relay(c, up)
		})
	}
}

// relay copies both ways until either side ends.
func relay(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
}

// dialIn dials addr from inside network namespace ns: the socket is made
// on a thread switched into ns, so it belongs to ns for its whole life.
func dialIn(ns, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	out := make(chan result, 1)
	go func() {
		// Left locked if the namespace cannot be restored: the thread
		// then dies with the goroutine instead of serving others in ns.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			out <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			out <- result{err: fmt.Errorf("namespace %s: %w", ns, err)}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			out <- result{err: fmt.Errorf("enter namespace %s: %w", ns, err)}
			return
		}
		c, err := net.DialTimeout("tcp", addr, uiDialTimeout)
		if serr := netns.Set(orig); serr == nil {
			runtime.UnlockOSThread()
		} else {
			if c != nil {
				c.Close()
				c = nil
			}
			err = errors.Join(err, serr)
		}
		out <- result{c, err}
	}()
	r := <-out
	return r.c, r.err
}
