package orchestrator

import (
	"fmt"
	"testing"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// TestStartFirstKeepsOldUntilNewIsUp: in a start-first update of a
// service with a health check, the old task runs on while its replacement
// is running but not healthy yet (api.TaskUp), and stops once it is.
func TestStartFirstKeepsOldUntilNewIsUp(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", nil)
	spec := replicated("web", 1)
	spec.Healthcheck = &api.Healthcheck{Test: []string{"CMD", "true"}}
	svc := h.createService(spec)
	old := live(h.settle(svc, 1), svc.ID)[0]
	h.reportHealth(old, api.HealthHealthy)
	svc = updateImage(h, svc, 1, orderStartFirst)

	var fresh *api.Task
	h.waitFor("the new task running, not healthy yet", func(v *raftstore.View) string {
		h.runAll(v)
		for _, tk := range live(v, svc.ID) {
			if tk.ID != old.ID && tk.Status.State == api.TaskRunning {
				fresh = tk
				return ""
			}
		}
		return "no new running task"
	})
	h.barrier()
	if cur := h.state.Read().Task(old.ID); cur.DesiredState != api.TaskRunning {
		t.Fatalf("the old task was told to %s while its replacement is only starting its health check\n%s", cur.DesiredState, dump(h.state.Read()))
	}
	h.reportHealth(fresh, api.HealthHealthy)
	h.waitFor("the old task stopped", func(v *raftstore.View) string {
		if cur := v.Task(old.ID); cur.DesiredState == api.TaskRunning {
			return fmt.Sprintf("old task desired %s", cur.DesiredState)
		}
		return ""
	})
}
