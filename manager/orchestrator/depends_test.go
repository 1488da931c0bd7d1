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
			name: "healthy waits for the health check", cond: api.DependHealthy, createDep: true,
			waitReason: `waiting for service "db" (service_healthy): 0 of 2 replicas healthy`,
			finish: func(h *harness, _ *raftstore.View, db *api.Service) {
				for _, task := range live(h.settle(db, 2), db.ID) {
					h.reportHealth(task, api.HealthHealthy)
				}
			},
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

// reportHealth reports a running task's new health, as its agent does.
func (h *harness) reportHealth(t *api.Task, health api.HealthState) {
	h.t.Helper()
	resp := h.do(raftstore.UpdateTaskStatus{NodeID: t.NodeID, At: h.clock.Now(), Updates: []raftstore.TaskStatusUpdate{{
		TaskID: t.ID, Status: api.TaskStatus{State: api.TaskRunning, Health: health, Message: "reported by test", Timestamp: h.clock.Now()},
	}}})
	if r := resp.Value.(raftstore.TaskStatusResult); r.Applied != 1 {
		h.t.Fatalf("health %s for task %s: %+v", health, t.ID, r)
	}
}

// TestDependsOnHealthyHolds: a dependency that runs but never turns
// healthy holds its dependents, and the reason says why.
func TestDependsOnHealthyHolds(t *testing.T) {
	tests := []struct {
		name   string
		check  bool
		health api.HealthState
		reason string
	}{
		{"no health check", false, api.HealthNone, "1 running, but the service has no health check"},
		{"still starting", true, api.HealthStarting, "1 running, health check not passed yet"},
		{"unhealthy", true, api.HealthUnhealthy, "1 running but unhealthy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.addNode("n1", nil)
			spec := replicated("db", 1)
			if tt.check {
				spec.Healthcheck = &api.Healthcheck{Test: []string{"CMD", "true"}}
			}
			db := h.createService(spec)
			for _, task := range live(h.settle(db, 1), db.ID) {
				if tt.health != api.HealthNone {
					h.reportHealth(task, tt.health)
				}
			}
			web := replicated("web", 1)
			web.DependsOn = []api.Dependency{{Service: "db", Condition: api.DependHealthy}}
			webSvc := h.createService(web)
			want := `waiting for service "db" (service_healthy): 0 of 1 replicas healthy (` + tt.reason
			h.waitFor("web held back", func(v *raftstore.View) string {
				ts := live(v, webSvc.ID)
				if len(ts) != 1 {
					return fmt.Sprintf("%d web tasks", len(ts))
				}
				if task := ts[0]; task.Status.State != api.TaskPending || !strings.Contains(task.Status.PendingReason, want) {
					return fmt.Sprintf("web task %s with reason %q", task.Status.State, task.Status.PendingReason)
				}
				return ""
			})
		})
	}
}
