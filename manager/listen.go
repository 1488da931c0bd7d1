package manager

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// pickPort turns port 0 into a free port. Raft and gossip advertise the
// address they are given, and the address is recorded before they start.
// Another process could take the port between this check and the bind;
// the bind then fails with a clear error and the manager can be started
// again.
func pickPort(name, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%w: %s %q: want host:port", ErrConfig, name, addr)
	}
	if port != "0" {
		return addr, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("pick a %s port on %s: %w", name, host, err)
	}
	picked := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("pick a %s port on %s: %w", name, host, err)
	}
	return picked, nil
}

// listenUnix listens on a unix socket, removing a stale socket file left by
// a manager that did not stop cleanly, but never one that is still served.
func listenUnix(path string) (net.Listener, error) {
	if path == "-" {
		return nil, nil
	}
	if _, err := os.Stat(path); err == nil {
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s is served by a running process; stop it or give another --socket", path)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("control socket %s: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale control socket: %w", err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket permissions: %w", err)
	}
	return l, nil
}
