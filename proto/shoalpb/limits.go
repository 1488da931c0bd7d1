package shoalpb

import "google.golang.org/grpc"

// MaxMessageBytes bounds one message of shoal's gRPC API. gRPC's default of
// 4 MiB is too small for a large cluster: the task list of 10,000 replicas
// is about 7 MB.
const MaxMessageBytes = 256 << 20

// CallOptions are the client call options every shoal client dials with.
func CallOptions() grpc.DialOption {
	return grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes))
}

// ServerOptions are the options every shoal gRPC server is built with.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes)}
}
