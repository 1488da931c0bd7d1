package controlapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-sched/shoal/agent/containerd"
	"github.com/shoal-sched/shoal/agent/containerd/containerdtest"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// echoScript prints three lines, then a fourth once the test creates
// /trigger/go, then idles: the test decides when the output grows.
const echoScript = `echo one; echo two; echo three
while [ ! -e /trigger/go ]; do sleep 0.05; done
echo four
exec sleep 3600`

// TestServiceLogsContainerd reads a service's logs end to end with the
// real runtime: a manager, an agent on a private containerd, and a
// busybox container whose output the test controls.
func TestServiceLogsContainerd(t *testing.T) {
	daemon := containerdtest.StartDaemon(t)
	reg := containerdtest.StartRegistry(t)
	c := managertest.StartCluster(t, 1, managertest.Options{})
	dataDir := t.TempDir()
	// The runtime labels containers with the node ID: the certificate's.
	nodeID := c.AgentCredentials(dataDir).Identity().NodeID
	rt, err := containerd.New(t.Context(), containerd.Options{
		Address: daemon.Address, Namespace: "logs-test", NodeID: nodeID, StateDir: t.TempDir(),
		InsecureRegistries: []string{reg.Host}, StopGrace: time.Second, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("containerd runtime: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("close runtime: %v", err)
		}
	})
	startAgent(t, c, "ctr-1", rt, dataDir)

	trigger := t.TempDir()
	cl := c.Client(0)
	if _, err := cl.CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
		Name: "echo", Image: reg.Image, Mode: "replicated", Replicas: 1,
		Command:         []string{"sh", "-c", echoScript},
		Mounts:          []*shoalpb.Mount{{Type: "bind", Source: trigger, Target: "/trigger"}},
		StopGracePeriod: durationpb.New(time.Second),
	}}); err != nil {
		t.Fatal(err)
	}
	tasks := runningTasks(t, c, "echo", 1)
	read := func(tail int64) []string {
		t.Helper()
		stream, err := cl.ServiceLogs(t.Context(), &shoalpb.ServiceLogsRequest{Service: "echo", Tail: tail})
		if err != nil {
			t.Fatal(err)
		}
		lines, err := collect(stream)
		if err != nil {
			t.Fatalf("logs: %v", err)
		}
		checkTagged(t, lines, tasks)
		got, errs := byTask(lines)
		if len(errs) > 0 {
			t.Fatalf("error lines: %v", errs)
		}
		return got[firstTask(tasks).GetId()]
	}
	// The container runs before its first lines reach the log file.
	var all []string
	c.WaitFor(waitTimeout, func() error {
		if all = read(-1); !slices.Equal(all, []string{"one", "two", "three"}) {
			return fmt.Errorf("logs %q, want one two three", all)
		}
		return nil
	})
	if got := read(1); !slices.Equal(got, []string{"three"}) {
		t.Fatalf("--tail 1: %q, want three", got)
	}

	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	stream, err := cl.ServiceLogs(ctx, &shoalpb.ServiceLogsRequest{Service: "echo", Tail: 1, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	var lines []*shoalpb.LogLine
	recvUntil(t, stream, &lines, func() bool { return len(lines) == 1 })
	if err := os.WriteFile(filepath.Join(trigger, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, stream, &lines, func() bool { return len(lines) == 2 })
	checkTagged(t, lines, tasks)
	if got, _ := byTask(lines); !slices.Equal(got[firstTask(tasks).GetId()], []string{"three", "four"}) {
		t.Fatalf("followed %v, want three then four", lines)
	}
}
