package scheduler

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

// TestScheduleWithLoadMatchesTasks: a node given as a Load kept by Add and
// Remove, with only the placed services' tasks listed, is placed on as
// the same node given with every task listed.
func TestScheduleWithLoadMatchesTasks(t *testing.T) {
	for seed := range uint64(propertyRuns) {
		r := rand.New(rand.NewPCG(seed, 3))
		nodes, tasks := randomCluster(r)
		placing := make(map[string]bool)
		for _, task := range tasks {
			placing[task.ServiceID] = true
		}
		loaded := make([]NodeInfo, len(nodes))
		for i, ni := range nodes {
			if r.IntN(3) == 0 {
				// Some tasks bind a host port: the load counts them too.
				for _, task := range ni.Tasks {
					task.Spec.Endpoint.Ports = []api.PortConfig{{TargetPort: 80, PublishedPort: 8080, PublishMode: api.PublishModeHost}}
				}
			}
			load := &Load{}
			// A task that came and went leaves nothing behind.
			gone := running(fmt.Sprintf("gone-%d", i), "s0", cpu, gib)
			gone.Spec.Endpoint.Ports = []api.PortConfig{{TargetPort: 80, PublishedPort: 9090, PublishMode: api.PublishModeHost}}
			hGone, _ := Holds(gone, embedded(gone))
			load.Add(hGone)
			loaded[i] = NodeInfo{Node: ni.Node, Load: load}
			for _, task := range ni.Tasks {
				if h, ok := Holds(task, embedded(task)); ok {
					load.Add(h)
				}
				if placing[task.ServiceID] {
					loaded[i].Tasks = append(loaded[i].Tasks, task)
				}
			}
			load.Remove(hGone)
		}
		got, want := Schedule(loaded, tasks, embedded), Schedule(nodes, tasks, embedded)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: Schedule with loads and with tasks disagree\n got: %+v\nwant: %+v", seed, got, want)
		}
	}
}

// TestLoadFree: Free is what subtracting each holding in turn gives, even
// where the sum passes the int64 range, and Remove takes back exactly what
// Add counted.
func TestLoadFree(t *testing.T) {
	big := Holding{Reserved: api.Resources{NanoCPUs: math.MaxInt64, MemoryBytes: math.MaxInt64}}
	small := Holding{Reserved: api.Resources{NanoCPUs: 3, MemoryBytes: 5}, Counts: true, Ports: []string{"80/tcp"}}
	capacity := api.Resources{NanoCPUs: 10, MemoryBytes: math.MaxInt64}
	for _, tc := range []struct {
		name string
		add  []Holding
		drop []Holding
	}{
		{name: "empty"},
		{name: "small", add: []Holding{small, small}},
		{name: "past the range", add: []Holding{big, big, small}},
		{name: "back within the range", add: []Holding{big, big, small}, drop: []Holding{big, big}},
		{name: "big alone", add: []Holding{small, big}, drop: []Holding{small}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l Load
			for _, h := range tc.add {
				l.Add(h)
			}
			for _, h := range tc.drop {
				l.Remove(h)
			}
			want, tasks, ports := capacity, 0, 0
			kept := append([]Holding(nil), tc.add...)
			for _, d := range tc.drop {
				for i, h := range kept {
					if reflect.DeepEqual(h, d) {
						kept = append(kept[:i], kept[i+1:]...)
						break
					}
				}
			}
			for _, h := range kept {
				want = want.Sub(h.Reserved)
				if h.Counts {
					tasks++
				}
				ports += len(h.Ports)
			}
			if got := l.Free(capacity); got != want {
				t.Errorf("Free = %+v, want %+v", got, want)
			}
			if l.Tasks != tasks || l.Ports["80/tcp"] != ports {
				t.Errorf("Tasks = %d, Ports = %v; want %d and %d on 80/tcp", l.Tasks, l.Ports, tasks, ports)
			}
		})
	}
}
