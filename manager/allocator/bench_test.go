package allocator

import (
	"fmt"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

// benchInputs is a cluster of 10 /20 networks and 5,000 tasks of 50
// services, 1,000 of them allocated already.
func benchInputs() Inputs {
	var in Inputs
	for i := range 10 {
		in.Networks = append(in.Networks, &api.Network{ID: fmt.Sprintf("n%d", i), Spec: api.NetworkSpec{Name: fmt.Sprintf("net%d", i)},
			Subnet: fmt.Sprintf("10.%d.0.0/20", 20+i), VNI: uint32(FirstVNI + i)})
	}
	specs := map[string]*api.ServiceSpec{}
	for s := range 50 {
		id := fmt.Sprintf("s%02d", s)
		spec := &api.ServiceSpec{Name: id, Networks: []api.NetworkAttachmentSpec{{Target: fmt.Sprintf("net%d", s%10)}}}
		specs[id] = spec
		in.Services = append(in.Services, &api.Service{ID: id, Spec: *spec})
		for r := range 100 {
			in.Tasks = append(in.Tasks, &api.Task{ID: fmt.Sprintf("%s.%d", id, r), ServiceID: id, DesiredState: api.TaskRunning})
		}
	}
	in.SpecOf = func(t *api.Task) *api.ServiceSpec { return specs[t.ServiceID] }
	first := Compute(in)
	byID := map[string][]api.NetworkAttachment{}
	for _, a := range first.Alloc.Tasks[:len(first.Alloc.Tasks)/2] {
		byID[a.TaskID] = a.Networks
	}
	for _, t := range in.Tasks {
		t.Networks = byID[t.ID]
	}
	return in
}

// BenchmarkComputeSettled is a pass that finds nothing to do (the cost of
// every state change once allocation is done) beside one that allocates
// a full entry (2,000 tasks).
func BenchmarkComputeSettled(b *testing.B) {
	in := benchInputs()
	for _, t := range in.Tasks {
		if t.Networks == nil {
			t.Status.State = api.TaskRunning // not waiting: nothing to allocate
		}
	}
	b.ResetTimer()
	for b.Loop() {
		Compute(in)
	}
}

func BenchmarkCompute2000Tasks(b *testing.B) {
	in := benchInputs()
	b.ResetTimer()
	for b.Loop() {
		if p := Compute(in); len(p.Alloc.Tasks) != maxTasksPerPlan {
			b.Fatalf("allocated %d, want %d", len(p.Alloc.Tasks), maxTasksPerPlan)
		}
	}
}
