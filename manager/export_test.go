package manager

import "google.golang.org/grpc"

// ServiceInfo is what manager m's gRPC server serves, for the test that
// every method has an authorisation entry.
func ServiceInfo(m *Manager) map[string]grpc.ServiceInfo { return m.serviceInfo() }
