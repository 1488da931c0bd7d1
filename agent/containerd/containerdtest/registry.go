package containerdtest

import (
	"log/slog"
	"net/http"
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
	// HealthImage is the busybox image with a HEALTHCHECK of its own
	// (labregistry.ImageHealthcheck).
	HealthImage string

	reg *labregistry.Registry
}

var busybox = sync.OnceValues(func() (v1.Image, error) {
	return labregistry.Busybox(labregistry.DefaultBusybox)
})

// RegistryOption changes how StartRegistry serves.
type RegistryOption func(*registryConfig)

type registryConfig struct {
	user, password string
}

// WithBasicAuth makes the registry demand HTTP basic auth with these
// credentials on every request.
func WithBasicAuth(user, password string) RegistryOption {
	return func(c *registryConfig) { c.user, c.password = user, password }
}

// StartRegistry serves the busybox image for the length of the test.
func StartRegistry(t testing.TB, opts ...RegistryOption) *Registry {
	t.Helper()
	var cfg registryConfig
	for _, o := range opts {
		o(&cfg)
	}
	img, err := busybox()
	if err != nil {
		t.Fatalf("build busybox image: %v", err)
	}
	reg := labregistry.New(slog.New(slog.DiscardHandler))
	if err := reg.Add(t.Context(), labregistry.DefaultRepository, img); err != nil {
		t.Fatalf("store busybox image: %v", err)
	}
	himg, err := labregistry.WithHealthcheck(img, labregistry.ImageHealthcheck)
	if err == nil {
		err = reg.Add(t.Context(), labregistry.HealthRepository, himg)
	}
	if err != nil {
		t.Fatalf("store busybox image with a healthcheck: %v", err)
	}
	var h http.Handler = reg
	if cfg.user != "" {
		h = basicAuth(cfg.user, cfg.password, reg)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	return &Registry{
		Host: host, Image: host + "/" + labregistry.DefaultRepository,
		HealthImage: host + "/" + labregistry.HealthRepository, reg: reg,
	}
}

// Push stores a variant of the busybox image (its own digest) under
// repoTag ("shoal/busybox:latest" moves that tag) and returns its digest.
func (r *Registry) Push(t testing.TB, repoTag, variant string) string {
	t.Helper()
	base, err := busybox()
	if err != nil {
		t.Fatalf("build busybox image: %v", err)
	}
	img, err := labregistry.Variant(base, variant)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.reg.Add(t.Context(), repoTag, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func basicAuth(user, password string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="shoal-test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
