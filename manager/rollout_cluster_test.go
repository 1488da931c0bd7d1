package manager_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// startFakeAgent runs an agent whose runtime is the fake at the Runtime
// seam, joined to every manager, until the test ends.
func startFakeAgent(t *testing.T, c *managertest.Cluster, name string, rt *fake.Runtime) {
	t.Helper()
	var join []string
	for i := range c.N() {
		join = append(join, c.Addr(i))
	}
	dir := t.TempDir()
	a, err := agent.New(agent.Config{
		DataDir: dir, Credentials: c.AgentCredentials(dir), Join: join, AdvertiseAddr: "127.0.0.1:0", Hostname: name,
		Runtime: rt, Resources: api.Resources{NanoCPUs: 8e9, MemoryBytes: 8 << 30},
		HeartbeatInterval: 200 * time.Millisecond, StatusDelay: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("agent %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent %s: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("agent %s did not stop within 30s", name)
		}
	})
}

// rolloutProgress reads the service and its tasks from manager i: the
// slots whose running task is on version, and the live tasks per slot.
func rolloutProgress(t *testing.T, cl shoalpb.ControlClient, name string, version uint64) (*shoalpb.Service, int, map[uint64]int, error) {
	svc, err := cl.GetService(t.Context(), &shoalpb.GetServiceRequest{Service: name})
	if err != nil {
		return nil, 0, nil, err
	}
	tasks, err := cl.ListTasks(t.Context(), &shoalpb.ListTasksRequest{Service: name})
	if err != nil {
		return nil, 0, nil, err
	}
	done, live := 0, map[uint64]int{}
	for _, task := range tasks.GetTasks() {
		st, _ := api.ParseTaskState(task.GetStatus().GetState())
		if task.GetDesiredState() != "running" || st.Terminal() {
			continue
		}
		live[task.GetSlot()]++
		if task.GetSpecVersion() == version && st == api.TaskRunning {
			done++
		}
	}
	return svc, done, live, nil
}

// TestRolloutContinuesAcrossLeaderKill: the leader is killed in the middle
// of a rolling update on three managers; the new leader continues the
// rollout from the store — the same rollout (its start time), each slot
// replaced once — to completion.
func TestRolloutContinuesAcrossLeaderKill(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	for i := range 2 {
		rt := fake.New()
		rt.ScriptImage("busybox:2", fake.Script{StartDelay: 100 * time.Millisecond})
		startFakeAgent(t, c, fmt.Sprintf("worker-%d", i+1), rt)
	}
	leader := c.WaitLeader(waitTimeout)
	cl := c.Client(leader)
	sp := spec("web")
	sp.Replicas = 6
	sp.UpdateConfig = &shoalpb.UpdateConfig{Parallelism: 1, FailureAction: "pause", Monitor: durationpb.New(300 * time.Millisecond)}
	created, err := cl.CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: sp})
	if err != nil {
		t.Fatal(err)
	}
	c.WaitFor(waitTimeout, func() error {
		_, done, _, err := rolloutProgress(t, cl, "web", 1)
		if err == nil && done != 6 {
			err = fmt.Errorf("%d of 6 running", done)
		}
		return err
	})
	sp.Image = "busybox:2"
	upd, err := cl.UpdateService(t.Context(), &shoalpb.UpdateServiceRequest{Service: "web", Spec: sp,
		ExpectedVersion: created.GetService().GetSpecVersion()})
	if err != nil {
		t.Fatal(err)
	}
	version := upd.GetService().GetSpecVersion()
	var started time.Time
	c.WaitFor(waitTimeout, func() error {
		svc, done, _, err := rolloutProgress(t, cl, "web", version)
		switch {
		case err != nil:
			return err
		case done < 2 || done > 4:
			return fmt.Errorf("%d of 6 slots updated; want the rollout midway", done)
		}
		started = svc.GetUpdateStatus().GetStartedAt().AsTime()
		return nil
	})
	c.Kill(leader)
	next := c.WaitLeader(waitTimeout)
	cl = c.Client(next)
	var final *shoalpb.Service
	c.WaitFor(30*time.Second, func() error {
		svc, done, live, err := rolloutProgress(t, cl, "web", version)
		if err != nil {
			return err
		}
		for slot, n := range live {
			if n > 1 {
				return fmt.Errorf("slot %d has %d live tasks", slot, n)
			}
		}
		if st := svc.GetUpdateStatus(); done != 6 || st.GetState() != string(api.UpdateCompleted) {
			return fmt.Errorf("%d of 6 updated, rollout %s", done, st.GetState())
		}
		final = svc
		return nil
	})
	st := shoalpb.ToUpdateStatus(final.GetUpdateStatus())
	if !st.StartedAt.Equal(started) || st.SpecVersion != version {
		t.Errorf("rollout after the leader change: %+v; want the one of version %d started at %s", st, version, started)
	}
	// Each slot was replaced once: one task of the new version per slot.
	tasks, err := cl.ListTasks(t.Context(), &shoalpb.ListTasksRequest{Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	perSlot := map[uint64]int{}
	for _, task := range tasks.GetTasks() {
		if task.GetSpecVersion() == version {
			perSlot[task.GetSlot()]++
		}
	}
	for slot := uint64(1); slot <= 6; slot++ {
		if perSlot[slot] != 1 {
			t.Errorf("slot %d has %d tasks of version %d, want 1 (the rollout neither restarted nor doubled)", slot, perSlot[slot], version)
		}
	}
}
