package webui_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// uiCluster is a real cluster in the test process (managers on Raft
// over TCP with mutual TLS, each serving the web UI on a loopback port)
// and agents on the fake runtime, the seam below the agent.
type uiCluster struct {
	t      *testing.T
	c      *managertest.Cluster
	agents map[string]*testAgent
}

type testAgent struct {
	id   string
	stop func()
}

func startUICluster(t *testing.T, managers, agents int) *uiCluster {
	t.Helper()
	c := managertest.StartCluster(t, managers, managertest.Options{NoGossip: true, Edit: func(cfg *manager.Config) {
		cfg.UIAddr = "127.0.0.1:0"
	}})
	u := &uiCluster{t: t, c: c, agents: map[string]*testAgent{}}
	for i := range agents {
		u.startAgent(fmt.Sprintf("worker-%d", i+1))
	}
	c.WaitFor(30*time.Second, func() error {
		resp, err := c.Client(0).ListNodes(t.Context(), &shoalpb.ListNodesRequest{})
		if err != nil {
			return err
		}
		ready := 0
		for _, n := range resp.GetNodes() {
			if n.GetNode().GetStatus() == string(api.NodeReady) {
				ready++
			}
		}
		if ready < agents {
			return fmt.Errorf("%d of %d agents ready", ready, agents)
		}
		return nil
	})
	return u
}

// startAgent runs an agent until the test ends or its stop is called;
// stopping it is its death as the leader sees it (no leave announced).
func (u *uiCluster) startAgent(name string) {
	t := u.t
	dir := t.TempDir()
	a, err := agent.New(agent.Config{
		DataDir: dir, Join: []string{u.c.Addr(0)}, AdvertiseAddr: "127.0.0.1:0", Hostname: name,
		Credentials: u.c.AgentCredentials(dir), Runtime: fake.New(),
		Resources:         api.Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30},
		HeartbeatInterval: 200 * time.Millisecond, StatusDelay: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("agent %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent %s: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("agent %s did not stop within 30s", name)
		}
	}
	t.Cleanup(stop)
	u.agents[name] = &testAgent{id: a.NodeID(), stop: stop}
}

// uiURL is manager i's web UI.
func (u *uiCluster) uiURL(i int) string { return "http://" + u.c.Manager(i).UIAddr() }

// createService creates a replicated service and waits for it to run.
func (u *uiCluster) createService(name string, replicas uint64) {
	t := u.t
	_, err := u.c.Client(0).CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
		Name: name, Image: "busybox:fake", Mode: "replicated", Replicas: replicas,
		Reservations: &shoalpb.Resources{NanoCpus: 1e8, MemoryBytes: 64 << 20},
	}, NoResolveImage: true})
	if err != nil {
		t.Fatalf("create service %s: %v", name, err)
	}
	u.c.WaitFor(30*time.Second, func() error {
		n, err := u.running(name)
		if err == nil && n != int(replicas) {
			err = fmt.Errorf("%d of %d tasks of %s running", n, replicas, name)
		}
		return err
	})
}

// running counts a service's running tasks, as ListTasks has them.
func (u *uiCluster) running(name string) (int, error) {
	resp, err := u.c.Client(0).ListTasks(u.t.Context(), &shoalpb.ListTasksRequest{Service: name})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, task := range resp.GetTasks() {
		if task.GetStatus().GetState() == "running" && task.GetDesiredState() == "running" {
			n++
		}
	}
	return n, nil
}
