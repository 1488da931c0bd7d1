package dispatcher_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/agent/network"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/poll"
	"github.com/shoal-sched/shoal/raftstore"
)

// recordingDataPlane is a fake agent data plane (a seam): it keeps the
// views and attaches it is given.
type recordingDataPlane struct {
	mu       sync.Mutex
	view     *api.NetworkView
	attached map[string]network.Sandbox
}

func (d *recordingDataPlane) SetView(v *api.NetworkView) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.view = v
}

func (d *recordingDataPlane) Attach(_ context.Context, sb network.Sandbox) (network.Wiring, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.attached == nil {
		d.attached = map[string]network.Sandbox{}
	}
	d.attached[sb.TaskID] = sb
	return network.Wiring{NetNS: "/netns/" + sb.TaskID}, nil
}

func (d *recordingDataPlane) Release(string) error        { return nil }
func (d *recordingDataPlane) Prune(map[string]bool) error { return nil }
func (d *recordingDataPlane) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
func (d *recordingDataPlane) Remove() error { return nil }
func (d *recordingDataPlane) Close()        {}

// TestAgentWiresTasksFromTheSessionsView: a real agent gets its network
// view on its session, hands it to its data plane, and a task on the
// network is wired (with its address) before its container is created.
func TestAgentWiresTasksFromTheSessionsView(t *testing.T) {
	s := newSingle(t, testGrace)
	dp := &recordingDataPlane{}
	ta := newTestAgent(t, "agent-net", []string{s.addr})
	ta.dp = dp
	ta.start()
	poll.Until(t, 10*time.Second, func() error {
		if n := s.state.Read().Node(ta.nodeID()); n == nil || n.Status != api.NodeReady {
			return errors.New("the agent's node is not ready yet")
		}
		return nil
	})
	svc := s.createService("web", 0)
	ctx := t.Context()
	now := time.Now()
	att := []api.NetworkAttachment{{NetworkID: "nf", Addr: "10.10.0.3/24", MAC: "02:42:0a:0a:00:03"}}
	for _, cmd := range []raftstore.Command{
		raftstore.CreateNetwork{Network: &api.Network{ID: "nf", Spec: api.NetworkSpec{Name: "front"}, Subnet: "10.10.0.0/24", Gateway: "10.10.0.1", VNI: 4096}},
		raftstore.WriteTasks{Create: []*api.Task{{ID: "t1", ServiceID: svc, SpecVersion: 1, Slot: 1, DesiredState: api.TaskRunning,
			Status: api.TaskStatus{State: api.TaskPending}, Networks: att}}, At: now},
		raftstore.AssignTasks{Assignments: []raftstore.Assignment{{TaskID: "t1", NodeID: ta.nodeID()}}, At: now},
	} {
		if _, err := s.apply.Apply(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 10*time.Second, func() error {
		dp.mu.Lock()
		v, sb := dp.view, dp.attached["t1"]
		dp.mu.Unlock()
		if v == nil || len(v.Networks) != 1 || v.Networks[0].VNI != 4096 || len(v.Endpoints) != 1 {
			return fmt.Errorf("view %+v, want front with t1", v)
		}
		if len(sb.Attachments) != 1 || sb.Attachments[0].Addr != "10.10.0.3/24" {
			return fmt.Errorf("t1 attached as %+v", sb)
		}
		if n := ta.rt.Network("t1"); n.NetNS != "/netns/t1" {
			return fmt.Errorf("t1's container has network %+v", n)
		}
		return nil
	})
}
