package ctl

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func TestParseHosts(t *testing.T) {
	tests := []struct {
		in      string
		want    []string // dial targets
		wantErr string
	}{
		{"unix:///var/lib/shoal/manager/control.sock", []string{"unix:///var/lib/shoal/manager/control.sock"}, ""},
		{"127.0.0.1:4242", []string{"passthrough:///127.0.0.1:4242"}, ""},
		{"tcp://[::1]:4242, m2.lab:4242", []string{"passthrough:///[::1]:4242", "passthrough:///m2.lab:4242"}, ""},
		{"", nil, `--host "": empty address in the list`},
		{"a:1,,b:2", nil, `--host "a:1,,b:2": empty address in the list`},
		{"unix://relative.sock", nil, `a unix socket needs an absolute path`},
		{"http://m1:4242", nil, `"http://m1:4242": want unix:///PATH or HOST:PORT`},
		{"m1", nil, `"m1": want unix:///PATH or HOST:PORT`},
		{":4242", nil, `want unix:///PATH or HOST:PORT`},
		{"m1:http", nil, `port "http" is not a number from 1 to 65535`},
		{"m1:0", nil, `port "0"`},
		{"m1:70000", nil, `port "70000"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseHosts(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseHosts(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseHosts(%q): %v", tt.in, err)
			}
			var dials []string
			for _, g := range got {
				dials = append(dials, g.dial)
			}
			if strings.Join(dials, " ") != strings.Join(tt.want, " ") {
				t.Errorf("parseHosts(%q) = %v, want %v", tt.in, dials, tt.want)
			}
		})
	}
}

// missingSocket returns unix://PATH of a socket nobody listens on.
func missingSocket(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "shoalctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return "unix://" + filepath.Join(dir, "none.sock")
}

// closedPort returns a loopback HOST:PORT that refuses connections.
func closedPort(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func TestHostFailover(t *testing.T) {
	t.Run("first socket missing", func(t *testing.T) {
		f := newFakeControl()
		host := missingSocket(t) + "," + serveTCP(t, f)
		out := mustRun(t, host, "service", "ls")
		if !strings.Contains(out, "web") {
			t.Errorf("output %q does not list web", out)
		}
	})
	t.Run("first port closed, second on a unix socket", func(t *testing.T) {
		f := newFakeControl()
		host := closedPort(t) + "," + serveUnix(t, f)
		mustRun(t, host, "node", "ls")
		if n := len(sent[*shoalpb.ListNodesRequest](f)); n != 1 {
			t.Errorf("second manager got %d requests, want 1", n)
		}
	})
	t.Run("first has no leader", func(t *testing.T) {
		noLeader, good := newFakeControl(), newFakeControl()
		noLeader.unavailable = "no leader: election in progress"
		host := serveTCP(t, noLeader) + "," + serveTCP(t, good)
		// ps makes two calls; once the second manager answered, the
		// second call goes straight to it.
		mustRun(t, host, "service", "ps", "web")
		if n := len(sent[proto.Message](noLeader)); n != 1 {
			t.Errorf("manager without a leader got %d requests, want 1", n)
		}
		if a, b := len(sent[*shoalpb.ListTasksRequest](good)), len(sent[*shoalpb.ListNodesRequest](good)); a != 1 || b != 1 {
			t.Errorf("answering manager got %d ListTasks and %d ListNodes, want 1 and 1", a, b)
		}
	})
	t.Run("flag overrides environment", func(t *testing.T) {
		f := newFakeControl()
		mustRun(t, missingSocket(t), "--host", serveTCP(t, f), "cluster", "status")
	})
	t.Run("all down", func(t *testing.T) {
		noLeader := newFakeControl()
		noLeader.unavailable = "no leader"
		missing, closed, leaderless := missingSocket(t), closedPort(t), serveTCP(t, noLeader)
		mustFail(t, strings.Join([]string{missing, closed, leaderless}, ","), []string{"service", "ls"},
			"no manager could answer", missing+": ", closed+": ", leaderless+": no leader",
			"shoalctl cluster status --stale")
	})
}

func TestTimeout(t *testing.T) {
	f := newFakeControl()
	f.hang = true
	host := serveTCP(t, f)
	mustFail(t, host, []string{"--timeout", "300ms", "cluster", "status"}, "no answer within --timeout")
	mustFail(t, host, []string{"--timeout", "0s", "cluster", "status"}, `--timeout "0s": must be positive`)
}

func TestGlobalFlagErrors(t *testing.T) {
	host := serveTCP(t, newFakeControl())
	mustFail(t, host, []string{"-o", "xml", "service", "ls"}, `--output "xml": want table, json or yaml`)
	mustFail(t, "nohost", []string{"service", "ls"}, `--host "nohost": "nohost": want unix:///PATH or HOST:PORT`)
	mustFail(t, host, []string{"--timeout", "soon", "service", "ls"}, `--timeout "soon"`)
}

func TestNewClientConnectTimeout(t *testing.T) {
	tests := []struct {
		timeout time.Duration
		hosts   int
		want    time.Duration
	}{
		{15 * time.Second, 1, 5 * time.Second},
		{15 * time.Second, 5, 3 * time.Second},
		{2 * time.Second, 5, time.Second},
	}
	for _, tt := range tests {
		c := newClient(make([]target, tt.hosts), tt.timeout, nil)
		if c.connectTimeout != tt.want {
			t.Errorf("newClient(%d hosts, %v).connectTimeout = %v, want %v", tt.hosts, tt.timeout, c.connectTimeout, tt.want)
		}
	}
}

// requestIDs records the request ID of every ScaleService call before the
// fake answers it.
type requestIDs struct {
	*fakeControl
	mu  sync.Mutex
	ids []string
}

func (r *requestIDs) ScaleService(ctx context.Context, req *shoalpb.ScaleServiceRequest) (*shoalpb.ServiceWriteResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	r.mu.Lock()
	r.ids = append(r.ids, strings.Join(md.Get(shoalpb.RequestIDKey), ","))
	r.mu.Unlock()
	return r.fakeControl.ScaleService(ctx, req)
}

func (r *requestIDs) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// TestRequestIDKeptAcrossManagers: a write that one manager could not
// serve goes to the next with the same request ID (so the leader can tell
// a retry from a new write); each write has its own.
func TestRequestIDKeptAcrossManagers(t *testing.T) {
	noLeader := &requestIDs{fakeControl: newFakeControl()}
	noLeader.unavailable = "no leader: the command may still commit"
	good := &requestIDs{fakeControl: newFakeControl()}
	host := serveTCP(t, noLeader) + "," + serveTCP(t, good)
	mustRun(t, host, "service", "scale", "-d", "web=5")
	mustRun(t, host, "service", "scale", "-d", "web=2")
	first, second := noLeader.got(), good.got()
	// The second command goes to the first manager again (a new process
	// knows nothing of the first one's luck) and then to the next.
	if len(first) != 2 || len(second) != 2 {
		t.Fatalf("scale calls: %d to the manager without a leader, %d to the next; want 1 and 2", len(first), len(second))
	}
	if first[0] == "" || len(first[0]) > 128 || strings.Contains(first[0], ",") {
		t.Fatalf("request id %q: want one id of at most 128 bytes", first[0])
	}
	if second[0] != first[0] {
		t.Errorf("the retry on the next manager carries request id %q, the first attempt %q", second[0], first[0])
	}
	if second[1] != first[1] || first[1] == first[0] || first[1] == "" {
		t.Errorf("the second write carries request ids %q and %q, the first %q; want one new id", first[1], second[1], first[0])
	}
}
