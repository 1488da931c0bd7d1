package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

const (
	// streamQueue is how many messages one event stream may hold for a
	// client that reads slower than the manager sends. Past it the
	// gateway drops the stream with a "resync" event: a slow browser
	// never holds up the gRPC stream (nor the manager's watchers).
	streamQueue = 256
	// maxClientStreams bounds the open streams of one client address,
	// so one browser (or script) cannot take all of maxStreams.
	maxClientStreams = 8
	// writeTimeout bounds one write to a client; a client that reads
	// nothing for that long is dropped.
	writeTimeout = 10 * time.Second
)

// errSlowClient ends a stream whose client fell streamQueue messages
// behind.
var errSlowClient = errors.New("the browser read the stream too slowly")

// clientStreams counts the open streams per client address.
type clientStreams struct {
	mu   sync.Mutex
	open map[string]int
}

func (c *clientStreams) acquire(remote string) (release func(), ok bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[host] >= maxClientStreams {
		return nil, false
	}
	c.open[host]++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.open[host]--; c.open[host] == 0 {
			delete(c.open, host)
		}
	}, true
}

// stream relays a server stream as Server-Sent Events: one "message"
// event per gRPC message (its JSON), then "end" when the stream ends, or
// "error" with the error's JSON when it fails. A Watch message that
// requires a resync, and a client too slow to keep up, end the stream
// with a "resync" event (the page reads the objects again). The stream
// ends when the client goes (its request's context).
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, r *http.Request, m rpc, req proto.Message) {
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("%w: %d streams are open, the most this UI serves", ErrRequest, maxStreams))
		return
	}
	release, ok := s.clients.acquire(r.RemoteAddr)
	if !ok {
		writeError(w, http.StatusTooManyRequests, fmt.Errorf("%w: this client has %d streams open, the most one client may", ErrRequest, maxClientStreams))
		return
	}
	defer release()
	// The gRPC stream ends when the client goes (ctx) or falls behind
	// (cancel); the relay writes until the client goes.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	recv, err := m.open(sctx, s.cfg.Control, req)
	if err != nil {
		writeError(w, httpStatus(err), err)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	// A broken stream is retried by the browser after a second.
	fmt.Fprint(w, "retry: 1000\n\n")
	if err := rc.Flush(); err != nil {
		return
	}
	msgs := make(chan proto.Message, streamQueue)
	errc := make(chan error, 1)
	go func() {
		for {
			msg, err := recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- msg:
			default:
				// The client is behind: stop reading the gRPC stream
				// rather than wait for it.
				cancel()
				errc <- errSlowClient
				return
			}
		}
	}()
	s.relay(ctx, w, rc, msgs, errc)
}

func (s *Server) relay(ctx context.Context, w io.Writer, rc *http.ResponseController, msgs <-chan proto.Message, errc <-chan error) {
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	write := func(format string, args ...any) error {
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	send := func(msg proto.Message) (done bool, err error) {
		if wm, ok := msg.(*shoalpb.WatchMessage); ok && wm.GetResyncRequired() {
			return true, write("event: resync\ndata: %s\n\n", resyncBody(wm.GetIndex(), wm.GetResyncReason()))
		}
		b, err := marshal.Marshal(msg)
		if err != nil {
			return true, err
		}
		return false, write("data: %s\n\n", b)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if write(": keep-alive\n\n") != nil {
				return
			}
		case msg := <-msgs:
			if done, err := send(msg); done || err != nil {
				return
			}
		case err := <-errc:
			if errors.Is(err, errSlowClient) {
				write("event: resync\ndata: %s\n\n", resyncBody(0, fmt.Sprintf("%v: more than %d messages behind", err, streamQueue)))
				return
			}
			// The reader sent every message before its error.
			for len(msgs) > 0 {
				if done, err := send(<-msgs); done || err != nil {
					return
				}
			}
			if errors.Is(err, io.EOF) {
				write("event: end\ndata: {}\n\n")
			} else if ctx.Err() == nil {
				s.log.Debug("stream ended", "error", err)
				write("event: error\ndata: %s\n", errorBody(err))
			}
			return
		}
	}
}

func resyncBody(index uint64, reason string) []byte {
	b, _ := json.Marshal(struct {
		Index  uint64 `json:"index,string,omitempty"`
		Reason string `json:"reason"`
	}{index, reason})
	return b
}
