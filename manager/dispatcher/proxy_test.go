package dispatcher_test

import (
	"io"
	"net"
	"sync"
	"testing"
)

// blackhole is a loopback TCP proxy to one address that can be frozen:
// frozen, it keeps every connection open but passes no byte either way (and
// accepts new connections without passing anything on them), as a cut link
// does to a connection whose peer never learns it is gone.
type blackhole struct {
	t      testing.TB
	lis    net.Listener
	target string

	mu     sync.Mutex
	frozen bool
	thaw   chan struct{} // closed when unfrozen
	conns  []net.Conn
	closed bool
}

func newBlackhole(t testing.TB, target string) *blackhole {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{t: t, lis: lis, target: target, thaw: make(chan struct{})}
	close(b.thaw)
	go b.accept()
	t.Cleanup(b.close)
	return b
}

func (b *blackhole) addr() string { return b.lis.Addr().String() }

// freeze stops all traffic through the proxy.
func (b *blackhole) freeze() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.frozen {
		b.frozen, b.thaw = true, make(chan struct{})
	}
}

// gate returns a channel that is closed while the proxy passes traffic.
func (b *blackhole) gate() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.thaw
}

func (b *blackhole) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		c.Close()
		return false
	}
	b.conns = append(b.conns, c)
	return true
}

func (b *blackhole) accept() {
	for {
		in, err := b.lis.Accept()
		if err != nil {
			return
		}
		if !b.track(in) {
			return
		}
		go b.serve(in)
	}
}

func (b *blackhole) serve(in net.Conn) {
	<-b.gate()
	out, err := net.Dial("tcp", b.target)
	if err != nil {
		in.Close()
		return
	}
	if !b.track(out) {
		return
	}
	go b.pipe(out, in)
	b.pipe(in, out)
}

// pipe copies src to dst, holding every chunk while the proxy is frozen. It
// never closes dst: a frozen link must not deliver the other side's close.
func (b *blackhole) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			<-b.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			<-b.gate()
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}

func (b *blackhole) close() {
	b.mu.Lock()
	b.closed = true
	if b.frozen {
		b.frozen = false
		close(b.thaw)
	}
	conns := b.conns
	b.conns = nil
	b.mu.Unlock()
	b.lis.Close()
	for _, c := range conns {
		c.Close()
	}
}
