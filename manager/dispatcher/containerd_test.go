package dispatcher_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/containerd"
	"github.com/shoal-sched/shoal/agent/containerd/containerdtest"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// ctrdAgent is an agent on the real containerd runtime; its data dir and
// containerd namespace outlive restarts, as on a host.
type ctrdAgent struct {
	t      *testing.T
	dir    string
	daemon *containerdtest.Daemon
	reg    *containerdtest.Registry
	join   []string

	a      *agent.Agent
	rt     *containerd.Runtime
	cancel context.CancelFunc
	done   chan error
}

func (c *ctrdAgent) start() {
	c.t.Helper()
	nodeID, err := agent.NodeID(c.dir)
	if err != nil {
		c.t.Fatal(err)
	}
	rt, err := containerd.New(c.t.Context(), containerd.Options{
		Address: c.daemon.Address, Namespace: "shoal-agent-test", NodeID: nodeID,
		StateDir: filepath.Join(c.dir, "runtime"), InsecureRegistries: []string{c.reg.Host},
		Logger: testLogger(),
	})
	if err != nil {
		c.t.Fatal(err)
	}
	a, err := agent.New(agent.Config{
		DataDir: c.dir, Join: c.join, AdvertiseAddr: "127.0.0.1:0", Hostname: "ctrd-host",
		Runtime: rt, Resources: api.Resources{NanoCPUs: 2e9, MemoryBytes: 2 << 30}, Logger: testLogger(), Plaintext: true,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.t.Context()))
	c.a, c.rt, c.cancel, c.done = a, rt, cancel, make(chan error, 1)
	go func() { c.done <- a.Run(ctx) }()
}

func (c *ctrdAgent) stop() {
	if c.a == nil {
		return
	}
	c.cancel()
	if err := <-c.done; err != nil {
		c.t.Errorf("agent: %v", err)
	}
	if err := c.rt.Close(); err != nil {
		c.t.Errorf("close runtime: %v", err)
	}
	c.a = nil
}

func taskLogs(t *testing.T, addr, taskID string) []string {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := shoalpb.NewAgentClient(conn).TaskLogs(t.Context(), &shoalpb.TaskLogsRequest{TaskIds: []string{taskID}, Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for {
		l, err := stream.Recv()
		if err != nil {
			break
		}
		lines = append(lines, string(l.GetLine()))
	}
	return lines
}

// TestContainerdAgent runs a replica in a real container (private
// containerd, runc, a busybox image from a loopback registry), restarts
// the agent and checks the container was adopted, not run again, then
// removes the service and checks the container is gone.
func TestContainerdAgent(t *testing.T) {
	if err := containerdtest.Requirements(); err != nil {
		t.Fatal(err)
	}
	daemon := containerdtest.StartDaemon(t)
	reg := containerdtest.StartRegistry(t)
	s := newSingle(t, 10*time.Second)
	s.startOrchestrator()
	c := &ctrdAgent{t: t, dir: t.TempDir(), daemon: daemon, reg: reg, join: []string{s.addr}}
	c.start()
	t.Cleanup(c.stop)

	svcID := "svc-ctrd"
	_, err := s.apply.Apply(t.Context(), raftstore.CreateService{Service: &api.Service{
		ID: svcID, Spec: api.ServiceSpec{
			Name: "hello", Image: reg.Image, Mode: api.ModeReplicated, Replicas: 1,
			Command:         []string{"sh", "-c", "echo hello from shoal; exec sleep 3600"},
			StopGracePeriod: api.Duration(time.Second),
		},
		CreatedAt: time.Now(), UpdatedAt: time.Now(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	taskID := checkRunsOnce(t, s, c, svcID)
	if _, err := s.apply.Apply(t.Context(), raftstore.RemoveService{ID: svcID, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	managertest.WaitFor(t, 30*time.Second, func() error {
		list, err := c.rt.List(t.Context())
		if err != nil {
			return err
		}
		if len(list) != 0 {
			return fmt.Errorf("containers after removal: %+v", list)
		}
		// The task reports shutdown, then the orchestrator may delete it.
		if tk := s.state.Read().Task(taskID); tk != nil && tk.Status.State != api.TaskShutdown {
			return fmt.Errorf("task is %s (%s)", tk.Status.State, strings.TrimSpace(tk.Status.Message))
		}
		return nil
	})
}

// checkRunsOnce waits for the service's replica to run and print its line,
// restarts the agent, and checks the container was adopted: same task, one
// container, and the line printed once. It returns the task ID.
func checkRunsOnce(t *testing.T, s *single, c *ctrdAgent, svcID string) string {
	t.Helper()
	running := waitRunningLong(t, s, svcID)
	taskID := running.ID
	managertest.WaitFor(t, 10*time.Second, func() error {
		if got := taskLogs(t, c.a.Addr(), taskID); fmt.Sprint(got) != "[hello from shoal]" {
			return fmt.Errorf("logs = %q", got)
		}
		return nil
	})

	c.stop()
	c.start()
	managertest.WaitFor(t, 30*time.Second, func() error {
		if s.d.SessionCount() != 1 {
			return fmt.Errorf("%d sessions", s.d.SessionCount())
		}
		list, err := c.rt.List(t.Context())
		if err != nil {
			return err
		}
		if len(list) != 1 || list[0].TaskID != taskID || !list[0].Running {
			return fmt.Errorf("containers after restart: %+v", list)
		}
		return nil
	})
	if got := waitRunningLong(t, s, svcID); got.ID != taskID {
		t.Fatalf("task %s replaced by %s across an agent restart", taskID, got.ID)
	}
	// Run once: the container printed its line once.
	if got := taskLogs(t, c.a.Addr(), taskID); fmt.Sprint(got) != "[hello from shoal]" {
		t.Fatalf("logs after restart = %q, want the one line of one run", got)
	}
	return taskID
}

func waitRunningLong(t *testing.T, s *single, svc string) *api.Task {
	t.Helper()
	var tk *api.Task
	managertest.WaitFor(t, 60*time.Second, func() error {
		running, err := slotsRunning(s.state.Read(), svc, 1)
		if err != nil {
			if ts := s.state.Read().TasksByService(svc); len(ts) > 0 {
				last := ts[len(ts)-1]
				return fmt.Errorf("%w (last task %s: %s %s %s)", err, last.ID, last.Status.State, last.Status.Message, last.Status.Err)
			}
			return err
		}
		tk = running[0]
		return nil
	})
	return tk
}
