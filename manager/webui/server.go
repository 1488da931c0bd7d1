// Package webui serves shoal's web UI from a manager: the page and its
// scripts (embedded, no server-side templating) and a small JSON gateway
// under /api/v1/ that maps one to one to the read methods of the Control
// gRPC API. The gateway calls the manager's own gRPC server, through the
// same authorisation table as any client, so the UI can show nothing the
// API does not: GET /api/v1/ListNodes answers what ListNodes answers, and
// the two streams (Events, ServiceLogs) are served as Server-Sent Events.
package webui

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

//go:embed assets
var assets embed.FS

const (
	// maxStreams bounds the open event and log streams of one UI server:
	// each holds a gRPC stream on the manager.
	maxStreams = 64
	// callTimeout bounds one unary gateway call.
	callTimeout = 15 * time.Second
	// keepAlive is how often an idle event stream sends a comment, so
	// proxies and the browser see it alive.
	keepAlive = 15 * time.Second
	// viewerID names the UI's read-only caller in the manager's logs.
	viewerID = "web-ui"
)

// Config configures a UI server.
type Config struct {
	// Control is a client of the manager's own control API; it must
	// carry the forwarded caller to the authorisation guard (a manager
	// dials its own server with its manager certificate).
	Control shoalpb.ControlClient
	// TLS, when set, serves HTTPS; a browser certificate it verifies
	// (of the cluster's CA) names the caller. Without it the UI is plain
	// HTTP and every caller is the read-only viewer.
	TLS *tls.Config
	// Logger receives the server's errors; nil discards them.
	Logger *slog.Logger
}

// Server is one UI server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	streams chan struct{}
	handler http.Handler
	csrfKey []byte // signs the token every write carries (write.go)
	clients clientStreams
}

// New returns a UI server for cfg.
func New(cfg Config) *Server {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log.With("component", "webui"), streams: make(chan struct{}, maxStreams),
		csrfKey: newCSRFKey(), clients: clientStreams{open: map[string]int{}}}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/v1/{method}", s.serveAPI)
	mux.HandleFunc("POST /api/v1/{method}", s.serveWrite)
	mux.HandleFunc("GET /api/session", s.serveSession)
	s.handler = securityHeaders(mux)
	if cfg.TLS == nil {
		s.handler = literalHostOnly(s.handler)
	}
	return s
}

// Handler is the UI's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers on l until ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler: s.handler, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	if s.cfg.TLS != nil {
		l = tls.NewListener(l, s.cfg.TLS)
	}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if err := srv.Shutdown(shut); err != nil {
			srv.Close()
		}
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web UI on %s: %w", l.Addr(), err)
	}
	return nil
}

// securityHeaders keeps the page to its own scripts and out of frames.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// literalHostOnly refuses a request whose Host is a name other than
// localhost. Plain HTTP is meant for a loopback (or otherwise private)
// listener; a web page elsewhere could point a name it controls at that
// address (DNS rebinding) and read the cluster through the visitor's
// browser, but its requests then carry its own name as Host.
func literalHostOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hp, _, err := net.SplitHostPort(host); err == nil {
			host = hp
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		if net.ParseIP(host) == nil && host != "localhost" {
			writeError(w, http.StatusMisdirectedRequest, fmt.Errorf(
				"%w: host %q: the plain-HTTP UI answers only to an IP address or localhost; open it by address, or serve it with TLS", ErrRequest, r.Host))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// caller is who the guard judges a gateway call by: the browser's
// verified certificate, or the read-only viewer.
func caller(r *http.Request) (authz.Caller, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return authz.Caller{NodeID: viewerID, Role: authz.RoleViewer}, nil
	}
	return authz.FromCert(r.TLS.VerifiedChains[0][0])
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("method")
	m, ok := reads[name]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("%w: no method %q: the gateway serves the Control API's reads %s", ErrRequest, name, names(reads)))
		return
	}
	req := m.request()
	if err := fillRequest(req, r.URL.Query()); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	c, err := caller(r)
	if err != nil {
		writeError(w, http.StatusForbidden, err)
		return
	}
	ctx := authz.ForwardContext(authz.WithCaller(r.Context(), c))
	if m.unary != nil {
		s.unary(ctx, w, m, req)
		return
	}
	s.stream(ctx, w, r, m, req)
}

func (s *Server) unary(ctx context.Context, w http.ResponseWriter, m rpc, req proto.Message) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := m.unary(ctx, s.cfg.Control, req)
	if err != nil {
		writeError(w, httpStatus(err), err)
		return
	}
	b, err := marshal.Marshal(resp)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(errorBody(err))
}
