// Package raftstream is the stream layer Raft speaks over between
// managers: TLS 1.3 both ways, and only with managers of this cluster that
// the manager admits (members of the Raft configuration, or joining, and
// not revoked). A connection of a peer that is revoked later is closed.
package raftstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-sched/shoal/authz"
)

// handshakeTimeout bounds one TLS handshake; a peer that stalls it holds
// up nothing else (each handshake runs on its own).
const handshakeTimeout = 5 * time.Second

// ErrClosed is returned by Accept once the stream is closed.
var ErrClosed = errors.New("raft stream closed")

// Config configures a Stream.
type Config struct {
	// Listener is the bound Raft listener; the stream owns it.
	Listener net.Listener
	// ServerTLS and ClientTLS are the manager's TLS configurations. A
	// client certificate is required whatever ServerTLS says.
	ServerTLS, ClientTLS *tls.Config
	// Admit decides whether a verified peer (either side of a
	// connection) may speak Raft with this member.
	Admit  func(authz.Caller) error
	Logger *slog.Logger
}

// Stream implements raft.StreamLayer over TLS.
type Stream struct {
	cfg      Config
	log      *slog.Logger
	source   net.Addr // the listener's IP, dialled from (see dialer)
	accepted chan net.Conn
	closed   chan struct{}
	close    sync.Once
	// ctx bounds handshakes; it ends when the stream closes.
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	conns map[*conn]struct{}
}

var _ raft.StreamLayer = (*Stream)(nil)

// New starts accepting on cfg.Listener.
func New(cfg Config) *Stream {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	server := cfg.ServerTLS.Clone()
	server.ClientAuth = tls.RequireAndVerifyClientCert
	server.MinVersion = tls.VersionTLS13
	cfg.ServerTLS = server
	client := cfg.ClientTLS.Clone()
	client.MinVersion = tls.VersionTLS13
	cfg.ClientTLS = client
	s := &Stream{
		cfg: cfg, log: cfg.Logger.With("component", "raft_stream"),
		accepted: make(chan net.Conn), closed: make(chan struct{}), conns: map[*conn]struct{}{},
	}
	if a, ok := cfg.Listener.Addr().(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		s.source = &net.TCPAddr{IP: a.IP}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.acceptLoop()
	return s
}

func (s *Stream) acceptLoop() {
	for {
		raw, err := s.cfg.Listener.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Warn("raft accept failed; stopping", "err", err)
			return
		}
		go s.handshake(raw)
	}
}

// handshake verifies an accepted connection and hands it to Accept.
func (s *Stream) handshake(raw net.Conn) {
	ctx, cancel := context.WithTimeout(s.ctx, handshakeTimeout)
	defer cancel()
	tc := tls.Server(raw, s.cfg.ServerTLS)
	peer, err := s.verify(ctx, tc)
	if err != nil {
		s.log.Warn("raft connection refused", "remote", raw.RemoteAddr().String(), "err", err)
		raw.Close()
		return
	}
	c := s.track(tc, peer)
	select {
	case s.accepted <- c:
	case <-s.closed:
		c.Close()
	}
}

// verify runs the handshake and admits the peer.
func (s *Stream) verify(ctx context.Context, tc *tls.Conn) (authz.Caller, error) {
	if err := tc.HandshakeContext(ctx); err != nil {
		return authz.Caller{}, fmt.Errorf("tls handshake: %w", err)
	}
	cs := tc.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return authz.Caller{}, authz.ErrNoCertificate
	}
	peer, err := authz.FromCert(cs.PeerCertificates[0])
	if err != nil {
		return authz.Caller{}, err
	}
	if err := s.cfg.Admit(peer); err != nil {
		return authz.Caller{}, fmt.Errorf("peer %s: %w", peer.NodeID, err)
	}
	return peer, nil
}

// Accept returns the next verified and admitted connection.
func (s *Stream) Accept() (net.Conn, error) {
	select {
	case c := <-s.accepted:
		return c, nil
	case <-s.closed:
		return nil, ErrClosed
	}
}

// Close stops accepting. Open connections are Raft's to close.
func (s *Stream) Close() error {
	var err error
	s.close.Do(func() {
		close(s.closed)
		s.cancel()
		err = s.cfg.Listener.Close()
	})
	return err
}

// Addr is the listener's address.
func (s *Stream) Addr() net.Addr { return s.cfg.Listener.Addr() }

// Dial opens a verified connection to the member at addr. It dials from
// the Raft listener's IP, so that a peer (or a partition proxy in tests)
// sees Raft traffic come from the address this member is known by.
func (s *Stream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	d := net.Dialer{LocalAddr: s.source}
	raw, err := d.DialContext(ctx, "tcp", string(addr))
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, s.cfg.ClientTLS)
	peer, err := s.verify(ctx, tc)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("raft peer %s: %w", addr, err)
	}
	return s.track(tc, peer), nil
}

// CloseNode closes every connection with the node (it was revoked).
func (s *Stream) CloseNode(nodeID string) int {
	s.mu.Lock()
	var victims []*conn
	for c := range s.conns {
		if c.peer == nodeID {
			victims = append(victims, c)
		}
	}
	s.mu.Unlock()
	for _, c := range victims {
		c.Close()
	}
	return len(victims)
}

// conn is a tracked connection with its verified peer.
type conn struct {
	*tls.Conn
	s    *Stream
	peer string
	once sync.Once
}

func (s *Stream) track(tc *tls.Conn, peer authz.Caller) *conn {
	c := &conn{Conn: tc, s: s, peer: peer.NodeID}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return c
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}
