package containerdtest

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/shoal-sched/shoal/deploy/labregistry"
)

// Registry is an in-memory registry on a loopback port serving the busybox
// image over plain HTTP.
type Registry struct {
	// Host is the registry's host:port (127.0.0.1:port): list it as an
	// insecure registry.
	Host string
	// Image is the full reference of the busybox image.
	Image string
}

var busybox = sync.OnceValues(func() (v1.Image, error) {
	return labregistry.Busybox(labregistry.DefaultBusybox)
})

// StartRegistry serves the busybox image for the length of the test.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	img, err := busybox()
	if err != nil {
		t.Fatalf("build busybox image: %v", err)
	}
	reg := labregistry.New(slog.New(slog.DiscardHandler))
	if err := reg.Add(t.Context(), labregistry.DefaultRepository, img); err != nil {
		t.Fatalf("store busybox image: %v", err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	return &Registry{Host: host, Image: host + "/" + labregistry.DefaultRepository}
}
