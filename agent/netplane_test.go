package agent_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/agent/network"
	"github.com/shoal-sched/shoal/api"
)

// fakeDataPlane is a scripted DataPlane (a fake at the seam): it records
// attaches and releases.
type fakeDataPlane struct {
	mu       sync.Mutex
	attached []string
	released []string
	pruned   map[string]bool
}

func (f *fakeDataPlane) SetView(*api.NetworkView) {}
func (f *fakeDataPlane) Attach(_ context.Context, sb network.Sandbox) (network.Wiring, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attached = append(f.attached, sb.TaskID)
	return network.Wiring{NetNS: "/netns/" + sb.TaskID, ResolvConf: "/files/resolv.conf", Hostname: sb.TaskID}, nil
}
func (f *fakeDataPlane) Release(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, id)
	return nil
}
func (f *fakeDataPlane) Prune(keep map[string]bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pruned = keep
	return nil
}
func (f *fakeDataPlane) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *fakeDataPlane) Remove() error                 { return nil }
func (f *fakeDataPlane) Close()                        {}

func (f *fakeDataPlane) lists() (attached, released []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.attached), slices.Clone(f.released)
}

func TestNetworkedTaskIsWiredBeforeCreateAndReleasedAfterRemove(t *testing.T) {
	rt := fake.New()
	dp := &fakeDataPlane{}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w, err := agent.NewWorkerWithDataPlane(ctx, rt, dp, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Wait()
	defer cancel()
	onNet := newTask("t1", "img", api.TaskRunning)
	onNet.Networks = []api.NetworkAttachment{{NetworkID: "n1", Addr: "10.0.0.2/24", MAC: "02:42:0a:00:00:02"}}
	onHost := newTask("t2", "img", api.TaskRunning)
	w.Full(onNet, onHost)
	waitState(t, w, "t1", api.TaskRunning)
	waitState(t, w, "t2", api.TaskRunning)
	if n := rt.Network("t1"); n.NetNS != "/netns/t1" || n.ResolvConf != "/files/resolv.conf" || n.Hostname != "t1" {
		t.Fatalf("t1 created with network %+v, want the data plane's wiring", n)
	}
	if n := rt.Network("t2"); n != (agent.ContainerNetwork{}) {
		t.Fatalf("t2 (host network) created with %+v", n)
	}
	if att, _ := dp.lists(); !slices.Equal(att, []string{"t1"}) {
		t.Fatalf("attached %v, want only t1", att)
	}
	stop := onNet.Clone()
	stop.DesiredState = api.TaskShutdown
	w.Increment([]*api.Task{stop})
	waitState(t, w, "t1", api.TaskShutdown)
	waitFor(t, 5*time.Second, func() error {
		if _, rel := dp.lists(); !slices.Equal(rel, []string{"t1"}) {
			return fmt.Errorf("released %v, want t1", rel)
		}
		return nil
	})
}
