package orchestrator

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

func TestDependsOnOrder(t *testing.T) {
	tests := []struct {
		name string
		cond api.DependencyCondition
		// createDep makes the dependency exist before web (false: web
		// first, while "db" does not exist yet).
		createDep  bool
		waitReason string // part of web's pending reason
		// finish makes db meet the condition.
		finish func(h *harness, v *raftstore.View, db *api.Service)
	}{
		{
			name: "started", cond: api.DependStarted, createDep: true,
			waitReason: `waiting for service "db" (service_started): 0 of 2 replicas running`,
			finish:     func(h *harness, _ *raftstore.View, db *api.Service) { h.settle(db, 2) },
		},
		{
			name: "healthy counts running", cond: api.DependHealthy, createDep: true,
			waitReason: "no health checks yet, running counts as healthy): 0 of 2 replicas running",
			finish:     func(h *harness, _ *raftstore.View, db *api.Service) { h.settle(db, 2) },
		},
		{
			name: "completed successfully", cond: api.DependCompletedSuccessfully, createDep: true,
			waitReason: `waiting for service "db" (service_completed_successfully): 0 of 2 replicas exited 0`,
			finish: func(h *harness, _ *raftstore.View, db *api.Service) {
				for _, task := range live(h.settle(db, 2), db.ID) {
					h.report(task, api.TaskComplete, 0)
				}
			},
		},
		{
			name: "missing dependency", cond: api.DependStarted,
			waitReason: `waiting for service "db" (service_started): no such service`,
			finish:     func(h *harness, _ *raftstore.View, _ *api.Service) { h.settle(h.createService(dbSpec()), 2) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.addNode("n1", nil)
			var db *api.Service
			if tt.createDep {
				db = h.createService(dbSpec())
			}
			web := replicated("web", 2)
			web.DependsOn = []api.Dependency{{Service: "db", Condition: tt.cond}}
			webSvc := h.createService(web)
			v := h.waitFor("web held back", func(v *raftstore.View) string {
				ts := live(v, webSvc.ID)
				if len(ts) != 2 {
					return fmt.Sprintf("%d web tasks", len(ts))
				}
				for _, task := range ts {
					if task.Status.State != api.TaskPending || !strings.Contains(task.Status.PendingReason, tt.waitReason) {
						return fmt.Sprintf("web task %s with reason %q", task.Status.State, task.Status.PendingReason)
					}
				}
				return ""
			})
			tt.finish(h, v, db)
			h.settle(webSvc, 2)
		})
	}
}

func dbSpec() api.ServiceSpec {
	spec := replicated("db", 2)
	spec.RestartPolicy.Condition = api.RestartOnFailure
	return spec
}
