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
	// ServerPingInterval: a server pings an idle client this often (gRPC's
	// floor for servers is 1 s). A manager thus drops the connection of an
	// agent or a peer manager that vanished within about 4 s.
	ServerPingInterval = 2 * time.Second
	// PingTimeout: a ping not answered within this closes the connection.
	PingTimeout = 2 * time.Second
	// minClientPing is the most often a server lets a client ping; a
	// client that pings more often is sent GOAWAY. It is below
	// ClientPingInterval with room for timer skew.
	minClientPing = ClientPingInterval / 2
)

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

// ServerOptions are the options every shoal gRPC server is built with: the
// message size limits and keepalive (pinging idle clients, and permitting
// the clients' own pings at ClientKeepalive's interval).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: ServerPingInterval, Timeout: PingTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: minClientPing, PermitWithoutStream: true}),
	}
}
