package authz

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// RequestMetrics times every call a gRPC server handles, by method and
// gRPC code. Its interceptors run outside the guard, so refused calls are
// counted too (with their PermissionDenied or Unauthenticated code). The
// method label is bounded: gRPC calls interceptors only for registered
// methods. A nil *RequestMetrics records nothing.
type RequestMetrics struct {
	duration *prometheus.HistogramVec
}

// NewRequestMetrics makes the request metrics and registers them with reg
// (nil: kept but not registered).
func NewRequestMetrics(reg prometheus.Registerer) *RequestMetrics {
	return &RequestMetrics{duration: promauto.With(reg).NewHistogramVec(prometheus.HistogramOpts{
		Name: "shoal_api_request_duration_seconds",
		Help: "Time to handle one gRPC call (a stream: its whole life), by method (service/Method) and gRPC code.",
		// 0.5 ms to 16 s.
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"method", "code"})}
}

func (m *RequestMetrics) observe(fullMethod string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(strings.TrimPrefix(fullMethod, "/"), status.Code(err).String()).Observe(time.Since(start).Seconds())
}

// Unary is the unary server interceptor.
func (m *RequestMetrics) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	m.observe(info.FullMethod, start, err)
	return resp, err
}

// Stream is the stream server interceptor.
func (m *RequestMetrics) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := h(srv, ss)
	m.observe(info.FullMethod, start, err)
	return err
}
