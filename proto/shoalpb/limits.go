package shoalpb

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// MaxMessageBytes bounds one message of shoal's gRPC API. gRPC's default of
// 4 MiB is too small for one unpaged list of a large cluster (10,000 tasks
// are about 7 MB); larger state moves in pages (ListTasks' page_size) and
// as a stream of changes (Watch), so no message needs more than this.
const MaxMessageBytes = 16 << 20

// Keepalive of every shoal connection, both ends. Without it a connection
// whose peer vanished (a cut link, a host powered off) never fails: no
// packet comes back, TCP does not notice, and a stream waits forever.
//
// These are the transport's backstop; the agent's session notices a silent
// leader much sooner, from the heartbeats on the stream itself.
const (
	// ClientPingInterval: a client pings a connection that has been idle
	// this long. gRPC will not let a client ping more often than every 10 s.
	ClientPingInterval = 10 * time.Second
	// ServerPingInterval: a server pings a client whose connection has been
	// idle this long. A leader holds a connection per agent (and a
	// follower one per agent that connected ahead): at 5,000 agents, every
	// 2 s was 2,500 pings a second each way on an idle cluster.
	ServerPingInterval = 20 * time.Second
	// ServerPingTimeout: a server closes a connection whose client has not
	// answered its ping within this. It only frees what a vanished client
	// held (the dispatcher notices a silent agent from its heartbeats), so
	// it is long: a timer counts a moment this process was not scheduled
	// as the client's silence, and with 2 s a leader starved for a moment
	// closed 2,000 healthy agent connections at once, whose handshakes
	// again then starved it further.
	ServerPingTimeout = 20 * time.Second
	// PingTimeout: a client closes a connection whose server has not
	// answered its ping within this, and dials another manager. It is what
	// notices a manager whose link was cut under a stream that waits (a
	// watch): ClientPingInterval plus this.
	PingTimeout = 5 * time.Second
	// SessionPingTimeout replaces PingTimeout on an agent's connections to
	// managers. The session's heartbeats already notice a silent leader,
	// so the transport need not: with 5 s, a leader starved for a moment
	// at 5,000 agents missed thousands of pings at once, the agents
	// dropped their sessions and dialled again, and the handshakes starved
	// it further (9,000 sessions lost in one run).
	SessionPingTimeout = ServerPingTimeout
	// SessionPingInterval replaces ClientPingInterval on an agent's
	// connections to managers. It is longer than the longest heartbeat
	// period a leader asks for (30 s), so a connection that carries a
	// session, alive with heartbeats, is never pinged: at 5,000 agents
	// beating every 25 s, pings after 10 s of quiet were 400 a second on
	// an idle leader, twice its heartbeats.
	SessionPingInterval = 35 * time.Second
	// minClientPing is the most often a server lets a client ping; a
	// client that pings more often is sent GOAWAY. It is below
	// ClientPingInterval with room for timer skew.
	minClientPing = ClientPingInterval / 2
)

// SessionKeepalive is ClientKeepalive with SessionPingInterval and
// SessionPingTimeout, for the connections of an agent's session; it goes
// after ClientKeepalive (the last keepalive option wins).
func SessionKeepalive() grpc.DialOption {
	return grpc.WithKeepaliveParams(keepalive.ClientParameters{
		Time: SessionPingInterval, Timeout: SessionPingTimeout, PermitWithoutStream: true,
	})
}

// CallOptions are the client call options every shoal client dials with.
func CallOptions() grpc.DialOption {
	return grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes))
}

// ClientKeepalive is the keepalive every shoal client dials with.
func ClientKeepalive() grpc.DialOption {
	return grpc.WithKeepaliveParams(keepalive.ClientParameters{
		Time: ClientPingInterval, Timeout: PingTimeout, PermitWithoutStream: true,
	})
}

// serverReadBuffer is each connection's read buffer: one TLS record, the
// most one read of a TLS connection returns (gRPC's default is 32 KiB).
const serverReadBuffer = 16 << 10

// ServerOptions are the options every shoal gRPC server is built with: the
// message size limits, keepalive (pinging idle clients, and permitting
// the clients' own pings at ClientKeepalive's interval), and a read buffer
// sized for a leader that holds a connection per agent, most of them idle
// between heartbeats (gRPC already shares write buffers between flushes).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.ReadBufferSize(serverReadBuffer),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: ServerPingInterval, Timeout: ServerPingTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: minClientPing, PermitWithoutStream: true}),
	}
}
