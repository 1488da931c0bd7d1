package agent

import (
	"context"
	"google.golang.org/grpc"
	"log/slog"

	"github.com/shoal-sched/shoal/api"
)

// Worker exposes the task runners to the external tests, which drive them
// with the fake runtime (package fake imports this package).
type Worker struct{ w *worker }

// NewWorker makes a worker keeping its records in dir and starts it: the
// records are resumed with the containers rt lists.
func NewWorker(ctx context.Context, rt Runtime, dir string) (*Worker, error) {
	return NewWorkerWithDataPlane(ctx, rt, nil, dir)
}

// NewWorkerWithDataPlane is NewWorker with a data plane.
func NewWorkerWithDataPlane(ctx context.Context, rt Runtime, dp DataPlane, dir string) (*Worker, error) {
	store, err := openTaskStore(dir, "node-under-test")
	if err != nil {
		return nil, err
	}
	w := newWorker(rt, dp, store, slog.New(slog.DiscardHandler))
	list, err := rt.List(ctx)
	if err != nil {
		return nil, err
	}
	w.start(ctx, list)
	return &Worker{w: w}, nil
}

// Full applies a full assignment set.
func (tw *Worker) Full(tasks ...*api.Task) { tw.w.apply(change{full: true, upsert: tasks}) }

// Increment applies an assignment change.
func (tw *Worker) Increment(upsert []*api.Task, remove ...string) {
	tw.w.apply(change{upsert: upsert, remove: remove})
}

// Status returns the task's current status and whether the worker has it.
func (tw *Worker) Status(id string) (api.TaskStatus, bool) {
	for _, u := range tw.w.statuses() {
		if u.TaskID == id {
			return u.Status, true
		}
	}
	tw.w.mu.Lock()
	r := tw.w.runners[id]
	tw.w.mu.Unlock()
	if r == nil {
		return api.TaskStatus{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status, true
}

// Reported drains the statuses queued for the leader.
func (tw *Worker) Reported() map[string]api.TaskStatus {
	out := map[string]api.TaskStatus{}
	for _, u := range tw.w.takeOutbox() {
		out[u.TaskID] = u.Status
	}
	return out
}

// Flush writes the records now; Wait waits for the runners after ctx ended.
func (tw *Worker) Flush() error { return tw.w.store.flush() }
func (tw *Worker) Wait()        { tw.w.wait() }

// ServiceInfo is what the agent's gRPC server serves, for the test that
// every method has an authorisation entry.
func ServiceInfo(a *Agent) map[string]grpc.ServiceInfo { return a.grpc.GetServiceInfo() }
