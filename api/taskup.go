package api

// TaskUp reports whether t counts as up: running, and healthy when its spec
// has an enabled health check. Until health checks are reported, running
// is up.
func TaskUp(t *Task, spec *ServiceSpec) bool {
	return t.Status.State == TaskRunning
}
