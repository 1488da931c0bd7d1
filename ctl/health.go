package ctl

import (
	"fmt"
	"strings"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// taskUp is api.TaskUp for a task as the control API lists it (with the
// spec of its version): running, and healthy when a check applies.
func taskUp(t *shoalpb.Task) bool {
	at, err := shoalpb.ToTask(t)
	if err != nil {
		return false
	}
	var spec *api.ServiceSpec
	if t.GetSpec() != nil {
		spec = &at.Spec
	}
	return api.TaskUp(at, spec)
}

// withHealth adds the task's health to a state word: "running (healthy)".
func withHealth(state string, st *shoalpb.TaskStatus) string {
	if h := st.GetHealth(); h != "" {
		return state + " (" + h + ")"
	}
	return state
}

// lastProbe describes the newest probe of a task: "exit 1: no /ok".
func lastProbe(st *shoalpb.TaskStatus) string {
	log := st.GetHealthLog()
	if len(log) == 0 {
		return ""
	}
	p := log[len(log)-1]
	out := strings.Join(strings.Fields(p.GetOutput()), " ")
	return fmt.Sprintf("exit %d: %s", p.GetExitCode(), out)
}
