package managertest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// sniffLimit and sniffTimeout bound how much of a connection's first
// request a proxy reads, and how long it waits for it, to learn the sender.
const (
	sniffLimit   = 4096
	sniffTimeout = 5 * time.Second
	dialTimeout  = 2 * time.Second
)

// proxy is a loopback TCP proxy in front of one listener of a manager; the
// manager advertises the proxy's address, so its peers reach it only
// through the proxy. Severed, the proxy closes every connection and refuses
// new ones. A proxy that can tell senders apart (sender is set) can also
// block one sender: its connections are closed, and new ones refused.
type proxy struct {
	ln net.Listener
	// sender names the peer that opened a connection from the first bytes
	// it sent, or says it cannot (yet).
	sender func(remote net.Addr, first []byte) (string, bool)

	mu           sync.Mutex
	target       string
	severed      bool
	blocked      map[string]bool
	conns        map[*pipe]bool
	unattributed int
	wg           sync.WaitGroup
}

// pipe is one proxied connection.
type pipe struct {
	from     string // the sender, "" when unknown
	down, up net.Conn
}

func (p *pipe) close() {
	p.down.Close()
	p.up.Close()
}

func newProxy(sender func(net.Addr, []byte) (string, bool)) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, sender: sender, blocked: map[string]bool{}, conns: map[*pipe]bool{}}
	p.wg.Go(p.accept)
	return p, nil
}

// addr is the address the manager advertises.
func (p *proxy) addr() string { return p.ln.Addr().String() }

// setTarget points the proxy at the manager's bound address (again after a
// restart).
func (p *proxy) setTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// serve proxies one connection until either side ends it or the proxy
// severs it.
func (p *proxy) serve(down net.Conn) {
	first, from, err := p.sniff(down)
	if err != nil {
		down.Close()
		return
	}
	p.mu.Lock()
	target, refused := p.target, p.severed || p.blocked[from]
	p.mu.Unlock()
	if refused {
		down.Close()
		return
	}
	up, err := net.DialTimeout("tcp", target, dialTimeout)
	if err != nil {
		down.Close()
		return
	}
	pp := &pipe{from: from, down: down, up: up}
	if !p.register(pp) {
		pp.close()
		return
	}
	defer p.unregister(pp)
	if _, err := up.Write(first); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, down); done <- struct{}{} }()
	go func() { _, _ = io.Copy(down, up); done <- struct{}{} }()
	<-done
	pp.close()
	<-done
}

// sniff reads the start of a connection until the proxy knows its sender
// (when it can tell senders apart at all) and returns what it read.
func (p *proxy) sniff(c net.Conn) ([]byte, string, error) {
	if p.sender == nil {
		return nil, "", nil
	}
	if from, ok := p.sender(c.RemoteAddr(), nil); ok {
		return nil, from, nil
	}
	if err := c.SetReadDeadline(time.Now().Add(sniffTimeout)); err != nil {
		return nil, "", err
	}
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 0, sniffLimit)
	for len(buf) < sniffLimit {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if from, ok := p.sender(c.RemoteAddr(), buf); ok {
			return buf, from, nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) || len(buf) == 0 {
				return nil, "", err
			}
			break
		}
	}
	p.mu.Lock()
	p.unattributed++
	p.mu.Unlock()
	return buf, "", nil
}

func (p *proxy) register(pp *pipe) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.severed || p.blocked[pp.from] {
		return false
	}
	p.conns[pp] = true
	return true
}

func (p *proxy) unregister(pp *pipe) {
	p.mu.Lock()
	delete(p.conns, pp)
	p.mu.Unlock()
	pp.close()
}

// sever closes every connection and refuses new ones until heal.
func (p *proxy) sever() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.severed = true
	for pp := range p.conns {
		pp.close()
	}
}

func (p *proxy) heal() {
	p.mu.Lock()
	p.severed = false
	p.mu.Unlock()
}

// block closes the connections of sender and refuses its new ones until
// unblock.
func (p *proxy) block(sender string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked[sender] = true
	for pp := range p.conns {
		if pp.from == sender {
			pp.close()
		}
	}
}

func (p *proxy) unblock(sender string) {
	p.mu.Lock()
	delete(p.blocked, sender)
	p.mu.Unlock()
}

// unattributedConns is how many connections the proxy could not tell the
// sender of (block cannot cut those).
func (p *proxy) unattributedConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unattributed
}

func (p *proxy) close() {
	p.ln.Close()
	p.sever()
	p.wg.Wait()
}

// raftSender returns a sender function for Raft connections. Over TLS a
// member dials from the IP of its Raft listener, which is its own in a
// proxied cluster: the remote IP names it. In plaintext every Raft request
// carries a header with the sender's own Raft address, and hashicorp/raft's
// msgpack encoding puts it first: the map key "Addr" and the address as a
// string. addrs maps each member's bound Raft address to the name the
// proxy blocks it by.
func raftSender(addrs func() map[string]string) func(net.Addr, []byte) (string, bool) {
	return func(remote net.Addr, b []byte) (string, bool) {
		rhost, _, _ := net.SplitHostPort(remote.String())
		for addr, name := range addrs() {
			if host, _, _ := net.SplitHostPort(addr); b == nil && host == rhost && host != "127.0.0.1" {
				return name, true
			}
			if b != nil && bytes.Contains(b, msgpackAddr(addr)) {
				return name, true
			}
		}
		return "", false
	}
}

// msgpackAddr is the header field "Addr" holding addr, as msgpack encodes
// it (both strings are short enough for msgpack's fixstr).
func msgpackAddr(addr string) []byte {
	out := append([]byte{0xa0 | 4}, "Addr"...)
	out = append(out, 0xa0|byte(len(addr)))
	return append(out, addr...)
}
