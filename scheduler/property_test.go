package scheduler

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

const propertyRuns = 400

func pick[T any](r *rand.Rand, list ...T) T { return list[r.IntN(len(list))] }

func randomNode(r *rand.Rand, id string) *api.Node {
	n := mkNode(id, int64(1+r.IntN(16))*cpu/4, int64(1+r.IntN(16))*gib/2)
	n.Labels = map[string]string{}
	if z := pick(r, "a", "b", "c", ""); z != "" {
		n.Labels["zone"] = z
	}
	if k := pick(r, "1", "2", ""); k != "" {
		n.Labels["rack"] = k
	}
	if r.IntN(5) == 0 {
		n.Role = api.RoleManager
	}
	switch x := r.IntN(20); {
	case x < 2:
		n.Status = api.NodeDown
	case x < 3:
		n.Status = api.NodeUnknown
	}
	switch x := r.IntN(20); {
	case x < 2:
		n.Availability = api.AvailabilityPause
	case x < 3:
		n.Availability = api.AvailabilityDrain
	}
	return n
}

// randomSpec is a service spec with random reservations and placement.
func randomSpec(r *rand.Rand) api.ServiceSpec {
	var spec api.ServiceSpec
	spec.Resources.Reservations = api.Resources{NanoCPUs: int64(r.IntN(4)) * cpu / 4, MemoryBytes: int64(r.IntN(4)) * gib / 2}
	pool := []string{"node.labels.zone==a", "node.labels.zone!=c", "node.role==worker", "node.hostname!=n03", "node.labels.rack==1"}
	for range r.IntN(3) {
		spec.Placement.Constraints = append(spec.Placement.Constraints, pick(r, pool...))
	}
	if r.IntN(3) == 0 {
		for range 1 + r.IntN(2) {
			spec.Placement.Preferences = append(spec.Placement.Preferences, pick(r, "spread=node.labels.zone", "spread=node.labels.rack"))
		}
	}
	if r.IntN(3) == 0 {
		spec.Placement.MaxReplicasPerNode = uint64(1 + r.IntN(3))
	}
	spec.Placement.Strategy = pick(r, api.StrategySpread, api.StrategySpread, api.StrategyBinpack, "")
	return spec
}

// randomCluster makes nodes carrying tasks of a few services, and tasks to
// place: replicated groups, global tasks naming a node, and now and then
// a group with an invalid constraint.
func randomCluster(r *rand.Rand) ([]NodeInfo, []*api.Task) {
	size := 25
	if r.IntN(4) == 0 {
		size = 200 // many nodes for few tasks: small groups keep their best candidates only
	}
	nodes := make([]NodeInfo, r.IntN(size))
	for i := range nodes {
		nodes[i].Node = randomNode(r, fmt.Sprintf("n%02d", i))
		for k := range r.IntN(4) {
			t := running(fmt.Sprintf("old-%d-%d", i, k), fmt.Sprintf("s%d", r.IntN(5)), int64(r.IntN(3))*cpu/4, int64(r.IntN(3))*gib/2)
			t.NodeID = nodes[i].Node.ID
			t.Status.State = pick(r, api.TaskRunning, api.TaskRunning, api.TaskAssigned, api.TaskFailed)
			t.DesiredState = pick(r, api.TaskRunning, api.TaskRunning, api.TaskShutdown)
			nodes[i].Tasks = append(nodes[i].Tasks, t)
		}
	}
	var out []*api.Task
	for g := range 1 + r.IntN(5) {
		svc := fmt.Sprintf("s%d", r.IntN(6))
		spec := randomSpec(r)
		if r.IntN(30) == 0 {
			spec.Placement.Constraints = append(spec.Placement.Constraints, "node.colour==red")
		}
		global := r.IntN(8) == 0
		for k := range 1 + r.IntN(20) {
			t := mkTask(fmt.Sprintf("t%d-%d", g, k), svc, 0, 0, slot(uint64(k+1)))
			t.SpecVersion = uint64(1 + g%2)
			t.Spec = new(spec)
			if global {
				t.Slot = 0
				t.NodeID = fmt.Sprintf("n%02d", r.IntN(len(nodes)+2))
			}
			out = append(out, t)
		}
	}
	return nodes, out
}

// TestScheduleMatchesNaive: the index changes how fast a node is found,
// never which node, nor the reason given when there is none.
func TestScheduleMatchesNaive(t *testing.T) {
	for seed := range uint64(propertyRuns) {
		r := rand.New(rand.NewPCG(seed, 1))
		nodes, tasks := randomCluster(r)
		got, want := Schedule(nodes, tasks, embedded), scheduleNaive(nodes, tasks)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: Schedule and the naive scan disagree\n got: %+v\nwant: %+v", seed, got, want)
		}
	}
}

// TestScheduleInvariants checks what must hold whatever the cluster: every
// task is answered once, no node is overcommitted, constraints and caps
// hold, and nothing lands on a node that is not ready and active.
func TestScheduleInvariants(t *testing.T) {
	placedSome := 0
	for seed := range uint64(propertyRuns) {
		r := rand.New(rand.NewPCG(seed, 2))
		nodes, tasks := randomCluster(r)
		res := Schedule(nodes, tasks, embedded)
		if err := checkInvariants(nodes, tasks, res); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		placedSome += len(res.Decisions)
	}
	if placedSome == 0 {
		t.Fatal("the random clusters placed no task at all: the property checks checked nothing")
	}
}

func checkInvariants(nodes []NodeInfo, tasks []*api.Task, res Result) error {
	if err := checkAnswered(tasks, res); err != nil {
		return err
	}
	return checkDecisions(nodes, tasks, res)
}

// checkAnswered: every task is placed or has a reason, exactly once.
func checkAnswered(tasks []*api.Task, res Result) error {
	seen := make(map[string]bool)
	for _, d := range res.Decisions {
		seen[d.TaskID] = true
	}
	for _, u := range res.Unplaced {
		if seen[u.TaskID] {
			return fmt.Errorf("task %s both placed and unplaced", u.TaskID)
		}
		if u.Reason == "" {
			return fmt.Errorf("task %s unplaced without a reason", u.TaskID)
		}
		seen[u.TaskID] = true
	}
	if len(seen) != len(tasks) || len(res.Decisions)+len(res.Unplaced) != len(tasks) {
		return fmt.Errorf("%d tasks, %d decisions, %d unplaced", len(tasks), len(res.Decisions), len(res.Unplaced))
	}
	return nil
}

// checkDecisions: no node overcommitted, no constraint or cap broken,
// nothing on a node that is not ready and active.
func checkDecisions(nodes []NodeInfo, tasks []*api.Task, res Result) error {
	byID := make(map[string]*api.Task)
	for _, t := range tasks {
		byID[t.ID] = t
	}
	type usage struct {
		free  api.Resources
		svc   map[string]int
		given bool
	}
	use := make(map[string]*usage)
	for _, ni := range nodes {
		u := &usage{free: ni.Node.Resources, svc: map[string]int{}}
		for _, t := range ni.Tasks {
			if !t.Status.State.Terminal() {
				u.free = u.free.Sub(t.Spec.Resources.Reservations)
				if t.DesiredState <= api.TaskRunning {
					u.svc[t.ServiceID]++
				}
			}
		}
		use[ni.Node.ID] = u
	}
	nodeByID := make(map[string]*api.Node)
	for _, ni := range nodes {
		nodeByID[ni.Node.ID] = ni.Node
	}
	for _, d := range res.Decisions {
		t, n := byID[d.TaskID], nodeByID[d.NodeID]
		if t == nil || n == nil {
			return fmt.Errorf("decision %+v names an unknown task or node", d)
		}
		if t.NodeID != "" && t.NodeID != d.NodeID {
			return fmt.Errorf("task %s names node %s but went to %s", t.ID, t.NodeID, d.NodeID)
		}
		if n.Status != api.NodeReady || (n.Availability != api.AvailabilityActive && n.Availability != "") {
			return fmt.Errorf("task %s went to node %s which is %s and %s", t.ID, n.ID, n.Status, n.Availability)
		}
		for _, s := range t.Spec.Placement.Constraints {
			c, err := api.ParseConstraint(s)
			if err != nil {
				return fmt.Errorf("task %s placed despite invalid constraint: %v", t.ID, err)
			}
			if !c.Match(n) {
				return fmt.Errorf("task %s went to node %s which does not meet %s", t.ID, n.ID, c)
			}
		}
		u := use[n.ID]
		u.free = u.free.Sub(t.Spec.Resources.Reservations)
		u.svc[t.ServiceID]++
		u.given = true
		if m := t.Spec.Placement.MaxReplicasPerNode; m > 0 && uint64(u.svc[t.ServiceID]) > m {
			return fmt.Errorf("node %s has %d tasks of %s, over the cap of %d", n.ID, u.svc[t.ServiceID], t.ServiceID, m)
		}
	}
	for id, u := range use {
		if u.given && (u.free.NanoCPUs < 0 || u.free.MemoryBytes < 0) {
			return fmt.Errorf("node %s overcommitted: %+v free after the pass", id, u.free)
		}
	}
	return nil
}

// TestSpreadBalance: one spread service, with room, ends with per-node
// counts within one of each other; a node with fewer is one that could
// not take another. With a zone preference the same holds per zone.
func TestSpreadBalance(t *testing.T) {
	for seed := range uint64(propertyRuns) {
		r := rand.New(rand.NewPCG(seed, 3))
		nodes, _ := randomCluster(r)
		spec := randomSpec(r)
		spec.Placement.Strategy = api.StrategySpread
		spec.Placement.Preferences = nil
		byZone := r.IntN(2) == 0
		if byZone {
			spec.Placement.Preferences = []string{"spread=node.labels.zone"}
		}
		tasks := tasks("web", 1+r.IntN(60), 0, 0)
		for _, t := range tasks {
			t.Spec = new(spec)
		}
		res := Schedule(nodes, tasks, embedded)
		if err := checkInvariants(nodes, tasks, res); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := checkBalance(nodes, spec, res, byZone); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

// checkBalance compares every two candidate nodes (or zones): the one
// with two or more fewer tasks must be unable to take another.
func checkBalance(nodes []NodeInfo, spec api.ServiceSpec, res Result, byZone bool) error {
	cons, _ := api.ParseConstraints(spec.Placement.Constraints)
	req := spec.Resources.Reservations
	count := make(map[string]int)
	for _, d := range res.Decisions {
		count[d.NodeID]++
	}
	type bucket struct {
		tasks   int
		hasRoom bool
	}
	buckets := make(map[string]*bucket)
	for _, ni := range nodes {
		n := ni.Node
		if staticNode(n, cons).kind != rejNone {
			continue
		}
		free := n.Resources
		for _, t := range ni.Tasks {
			if !t.Status.State.Terminal() {
				free = free.Sub(t.Spec.Resources.Reservations)
			}
		}
		free = free.Sub(api.Resources{NanoCPUs: req.NanoCPUs * int64(count[n.ID]), MemoryBytes: req.MemoryBytes * int64(count[n.ID])})
		room := free.NanoCPUs >= req.NanoCPUs && free.MemoryBytes >= req.MemoryBytes &&
			(spec.Placement.MaxReplicasPerNode == 0 || uint64(count[n.ID]) < spec.Placement.MaxReplicasPerNode)
		key := n.ID
		if byZone {
			v, ok := n.Labels["zone"]
			key = fmt.Sprintf("zone %q (labelled %v)", v, ok)
		}
		b := buckets[key]
		if b == nil {
			b = &bucket{}
			buckets[key] = b
		}
		b.tasks += count[n.ID]
		b.hasRoom = b.hasRoom || room
	}
	for ka, a := range buckets {
		for kb, b := range buckets {
			if a.tasks > b.tasks+1 && b.hasRoom {
				return fmt.Errorf("%s has %d tasks, %s has %d and room for more", ka, a.tasks, kb, b.tasks)
			}
		}
	}
	return nil
}

// TestScheduleDeterministic: the same cluster in any order gives the same
// result, and the input is left as it was.
func TestScheduleDeterministic(t *testing.T) {
	for seed := range uint64(propertyRuns) {
		r := rand.New(rand.NewPCG(seed, 4))
		nodes, tasks := randomCluster(r)
		before := cloneInput(nodes, tasks)
		first := Schedule(nodes, tasks, embedded)
		if !reflect.DeepEqual(cloneInput(nodes, tasks), before) {
			t.Fatalf("seed %d: Schedule changed its input", seed)
		}
		if again := Schedule(nodes, tasks, embedded); !reflect.DeepEqual(first, again) {
			t.Fatalf("seed %d: two runs differ\n%+v\n%+v", seed, first, again)
		}
		shuffledNodes, shuffledTasks := cloneInput(nodes, tasks).nodes, cloneInput(nodes, tasks).tasks
		r.Shuffle(len(shuffledNodes), func(i, j int) { shuffledNodes[i], shuffledNodes[j] = shuffledNodes[j], shuffledNodes[i] })
		r.Shuffle(len(shuffledTasks), func(i, j int) { shuffledTasks[i], shuffledTasks[j] = shuffledTasks[j], shuffledTasks[i] })
		if shuffled := Schedule(shuffledNodes, shuffledTasks, embedded); !reflect.DeepEqual(first, shuffled) {
			t.Fatalf("seed %d: input order changed the result\n%+v\n%+v", seed, first, shuffled)
		}
	}
}

type input struct {
	nodes []NodeInfo
	tasks []*api.Task
}

func cloneInput(nodes []NodeInfo, tasks []*api.Task) input {
	var in input
	for _, ni := range nodes {
		c := NodeInfo{Node: ni.Node.Clone()}
		for _, t := range ni.Tasks {
			c.Tasks = append(c.Tasks, t.Clone())
		}
		in.nodes = append(in.nodes, c)
	}
	for _, t := range tasks {
		in.tasks = append(in.tasks, t.Clone())
	}
	return in
}
