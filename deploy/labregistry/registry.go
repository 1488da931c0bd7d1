package labregistry

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is an in-memory OCI distribution registry. It is an
// http.Handler: serve it on a listener of your choice.
type Registry struct {
	handler http.Handler
}

// New returns an empty registry; request lines go to logger at debug level.
func New(logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.Default()
	}
	l := slog.NewLogLogger(logger.With("component", "labregistry").Handler(), slog.LevelDebug)
	return &Registry{handler: registry.New(registry.Logger(l))}
}

// ServeHTTP serves the registry API.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.handler.ServeHTTP(w, req)
}

// Add stores img under repoTag (like "shoal/busybox:latest"). It talks to
// the registry's own HTTP API in-process, so no listener is needed yet.
func (r *Registry) Add(ctx context.Context, repoTag string, img v1.Image) error {
	// The host part is never dialled: the transport hands requests straight
	// to the handler.
	ref, err := name.ParseReference("registry.invalid/"+repoTag, name.Insecure)
	if err != nil {
		return fmt.Errorf("image name %q: %w", repoTag, err)
	}
	err = remote.Write(ref, img, remote.WithContext(ctx), remote.WithTransport(handlerTransport{r.handler}))
	if err != nil {
		return fmt.Errorf("store image %q: %w", repoTag, err)
	}
	return nil
}

// handlerTransport is an http.RoundTripper that calls a handler directly.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	if req.Body == nil {
		req.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// Config is what Run needs.
type Config struct {
	// Addr is the host:port to listen on.
	Addr string
	// Busybox is the path of the static busybox binary (DefaultBusybox if empty).
	Busybox string
	// Repository is the repository:tag to serve the image as
	// (DefaultRepository if empty).
	Repository string
	// Aliases are more repository:tag names for the same image, such as
	// "library/busybox:latest", which lets the registry stand in as a
	// mirror of Docker Hub for files that say just "image: busybox".
	Aliases []string
	Logger  *slog.Logger
	// Ready, if set, is called with the bound address once the registry
	// serves the image (useful with port 0).
	Ready func(addr string)
}

// Run serves the busybox image on cfg.Addr until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Busybox == "" {
		cfg.Busybox = DefaultBusybox
	}
	if cfg.Repository == "" {
		cfg.Repository = DefaultRepository
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	img, err := Busybox(cfg.Busybox)
	if err != nil {
		return err
	}
	reg := New(logger)
	for _, repo := range append([]string{cfg.Repository}, cfg.Aliases...) {
		if err := reg.Add(ctx, repo, img); err != nil {
			return err
		}
	}
	himg, err := WithHealthcheck(img, ImageHealthcheck)
	if err != nil {
		return err
	}
	if err := reg.Add(ctx, HealthRepository, himg); err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on addr %q: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           reg,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(discard{}, "", 0),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	logger.Info("serving image", "component", "labregistry", "addr", addr, "image", addr+"/"+cfg.Repository)
	if cfg.Ready != nil {
		cfg.Ready(addr)
	}
	select {
	case err := <-served:
		return fmt.Errorf("serve registry on %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down registry on %s: %w", addr, err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve registry on %s: %w", addr, err)
	}
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
