package webui

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/shoal-sched/shoal/internal/poll"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// fakeWatch is a Control client whose Watch sends big messages as fast
// as it is read; it records when its stream is cancelled.
type fakeWatch struct {
	shoalpb.ControlClient
	cancelled atomic.Bool
	sent      atomic.Int64
	// resync: the first message ends the watch (the manager dropped it).
	resync bool
}

func (f *fakeWatch) Watch(ctx context.Context, _ *shoalpb.WatchRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[shoalpb.WatchMessage], error) {
	context.AfterFunc(ctx, func() { f.cancelled.Store(true) })
	return &fakeWatchStream{ctx: ctx, f: f}, nil
}

type fakeWatchStream struct {
	grpc.ClientStream
	ctx context.Context
	f   *fakeWatch
}

func (s *fakeWatchStream) Header() (metadata.MD, error) { return metadata.MD{}, nil }

func (s *fakeWatchStream) Recv() (*shoalpb.WatchMessage, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	n := s.f.sent.Add(1)
	if s.f.resync {
		if n > 1 {
			<-s.ctx.Done()
			return nil, s.ctx.Err()
		}
		return &shoalpb.WatchMessage{Index: 7, ResyncRequired: true, ResyncReason: "the watch fell behind"}, nil
	}
	return &shoalpb.WatchMessage{Index: uint64(n), Changes: []*shoalpb.WatchChange{{
		Kind: "service", Action: "update", Service: &shoalpb.Service{Id: strings.Repeat("x", 16<<10)},
	}}}, nil
}

// A client that stops reading never holds up the gRPC stream: once it is
// streamQueue messages behind, the gateway cancels the stream and the
// client, reading again, finds a resync event at the end.
func TestSlowClientGetsResync(t *testing.T) {
	f := &fakeWatch{}
	srv := httptest.NewServer(New(Config{Control: f}).Handler())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/Watch", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Not reading: the socket's buffers fill, then the queue.
	poll.Until(t, 20*time.Second, func() error {
		if !f.cancelled.Load() {
			return errNotYet
		}
		return nil
	})
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var last string
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "event:") {
			last = l
		}
	}
	if last != "event: resync" {
		t.Fatalf("last event %q after %d messages, want a resync", last, f.sent.Load())
	}
}

var errNotYet = &notYet{}

type notYet struct{}

func (*notYet) Error() string { return "the gateway still reads the watch" }

// A Watch message that requires a resync becomes the "resync" event,
// with the manager's reason, and ends the stream.
func TestWatchResyncIsAnEvent(t *testing.T) {
	f := &fakeWatch{resync: true}
	srv := httptest.NewServer(New(Config{Control: f}).Handler())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/Watch", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := "event: resync\ndata: {\"index\":\"7\",\"reason\":\"the watch fell behind\"}\n\n"
	if !strings.HasSuffix(string(b), want) {
		t.Fatalf("stream %q, want it to end with %q", b, want)
	}
	poll.Until(t, 10*time.Second, func() error {
		if !f.cancelled.Load() {
			return errNotYet
		}
		return nil
	})
}
