package orchestrator

import (
	"bytes"
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// groupKey names the place a task fills: a slot of a replicated service or
// a node of a global one.
type groupKey struct {
	slot uint64
	node string
}

func (k groupKey) String() string {
	if k.node != "" {
		return "node " + k.node
	}
	return fmt.Sprintf("slot %d", k.slot)
}

// group is the tasks of one slot (replicated) or one node (global), each
// list oldest first.
type group struct {
	key  groupKey
	live []*api.Task // wanted (desired running) and not ended
	dead []*api.Task // wanted but ended: awaiting a restart decision, or left so by policy
	past []*api.Task // told to stop (desired shutdown or remove)
}

// olderTask orders the tasks of one group: Attempt grows with every
// replacement, so it orders them even when two share a timestamp.
func olderTask(a, b *api.Task) int {
	return cmp.Or(cmp.Compare(a.Attempt, b.Attempt), a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
}

func (g *group) add(t *api.Task) {
	switch {
	case t.DesiredState > api.TaskRunning:
		g.past = append(g.past, t)
	case t.Status.State.Terminal():
		g.dead = append(g.dead, t)
	default:
		g.live = append(g.live, t)
	}
}

// drop removes the task with t's id from whichever list holds it.
func (g *group) drop(t *api.Task) {
	del := func(ts []*api.Task) []*api.Task {
		return slices.DeleteFunc(ts, func(x *api.Task) bool { return x.ID == t.ID })
	}
	g.live, g.dead, g.past = del(g.live), del(g.dead), del(g.past)
}

// put files the (changed) task t in place of its previous version.
func (g *group) put(t *api.Task) {
	g.drop(t)
	g.add(t)
	for _, ts := range [][]*api.Task{g.live, g.dead, g.past} {
		slices.SortFunc(ts, olderTask)
	}
}

func (g *group) occupied() bool { return len(g.live)+len(g.dead) > 0 }

// wanted is every task of the group that should be running.
func (g *group) wanted() []*api.Task { return append(slices.Clone(g.live), g.dead...) }

// nextAttempt is the Attempt of the next task in this group.
func (g *group) nextAttempt() uint64 {
	var n uint64
	found := false
	for _, ts := range [][]*api.Task{g.live, g.dead, g.past} {
		for _, t := range ts {
			n, found = max(n, t.Attempt), true
		}
	}
	if !found {
		return 0
	}
	return n + 1
}

// serviceTasks is one service's tasks by group.
type serviceTasks struct {
	groups map[groupKey]*group
	// order lists the groups by key; unsorted says a group was added out
	// of order since the last sort (tasks are read in slot order, so
	// replicated services rarely need one).
	order    []*group
	unsorted bool
}

func newServiceTasks() *serviceTasks {
	return &serviceTasks{groups: make(map[groupKey]*group)}
}

func (st *serviceTasks) group(k groupKey) *group {
	g, ok := st.groups[k]
	if !ok {
		g = &group{key: k}
		st.groups[k] = g
		if n := len(st.order); n > 0 && compareKeys(st.order[n-1].key, k) > 0 {
			st.unsorted = true
		}
		st.order = append(st.order, g)
	}
	return g
}

func compareKeys(a, b groupKey) int {
	return cmp.Or(cmp.Compare(a.slot, b.slot), cmp.Compare(a.node, b.node))
}

// sorted returns the groups by slot, then node id. The slice is shared:
// callers must not change it.
func (st *serviceTasks) sorted() []*group {
	if st.unsorted {
		slices.SortFunc(st.order, func(a, b *group) int { return compareKeys(a.key, b.key) })
		st.unsorted = false
	}
	return st.order
}

// pass is one reconciliation: the store as read, indexed, and the plan of
// what to write. Reconcilers change tasks only through the pass, which
// keeps the groups in step with the plan.
//
// A full pass reads every task; a narrowed one reads only the tasks of the
// services it needs (loadServices) and those waiting for a node, and the
// nodes one by one until the scheduling step or a global service needs
// them all, so that its cost follows what changed, not the cluster's size.
// Either way the rules below see the same groups for the services they
// look at.
type pass struct {
	log   *slog.Logger
	now   time.Time
	index uint64
	// services is what the pass looks at, in name order: every service in
	// a full pass, those it loaded in a narrowed one (inScope's among
	// them), so that a narrowed pass does not read every service either.
	services []*api.Service
	// svcByID and svcByName index services in a full pass; a narrowed one
	// looks services up in the view (service, serviceNamed), so that its
	// cost does not grow with the number of services.
	svcByID   map[string]*api.Service
	svcByName map[string]*api.Service
	// looked keeps a narrowed pass's lookups by id: filing a service's
	// 10,000 tasks asks for it 10,000 times.
	looked map[string]*api.Service
	// nodes is every node, once allNodes has read them; nodeByID holds
	// those read so far (nil for an id that names no node).
	nodes    []*api.Node
	nodeByID map[string]*api.Node
	// all is every task as read by a full pass (nil in a narrowed one).
	all     []*api.Task
	bySvc   map[string]*serviceTasks // the services loaded so far
	removed []*api.Task              // tasks of removed services
	// awaiting is the tasks that waited for a node in the store.
	awaiting []*api.Task
	plan     plan
	wake     time.Time // earliest time a later pass has work
	// cur is the service being reconciled ("" outside that step); wakes
	// is, by service, the time its own rules asked for a pass, so that a
	// narrowed pass at that time includes it.
	cur   string
	wakes map[string]time.Time
	// orphaned names the services this pass orphaned a task of: their
	// replacements are made in the same pass, whatever its scope.
	orphaned map[string]bool
	// reconciled is the services this pass reconciles (nil: all).
	reconciled map[string]bool
	dirty      map[specKey]bool
	waits      map[string]string // depends_on verdicts by service id
	// maxReplicas is the cluster's max-replicas: no service gets more
	// slots, whatever its spec says.
	maxReplicas uint64
	// warned maps a service whose replicas were cut to maxReplicas to the
	// spec version last warned about (nil: warn on every pass).
	warned map[string]uint64
	view   *raftstore.View
	specs  map[specKey]*api.ServiceSpec // versions looked up so far
	// statuses and rollback are the rollouts' moves, committed after the
	// task entries (update_status.go).
	statuses []raftstore.SetUpdateStatus
	rollback []raftstore.RollbackService
	// pending counts the tasks the scheduling step left waiting, by
	// reason class.
	pending map[string]int
}

// specKey names one version of a service's spec.
type specKey struct {
	service string
	version uint64
}

// newPass reads the whole state for a full pass.
func newPass(v *raftstore.View, now time.Time, log *slog.Logger) *pass {
	p := openPass(v, now, log)
	p.loadAll()
	return p
}

// openPass reads the services and what waits for a node; the caller loads
// the tasks it needs (loadAll or loadServices) before the rules run.
func openPass(v *raftstore.View, now time.Time, log *slog.Logger) *pass {
	p := &pass{
		log:      log,
		now:      now,
		index:    v.Index(),
		nodeByID: make(map[string]*api.Node),
		bySvc:    make(map[string]*serviceTasks),
		awaiting: v.TasksAwaitingNode(),
		plan:     newPlan(now),
		dirty:    make(map[specKey]bool),
		waits:    make(map[string]string),
		wakes:    make(map[string]time.Time),
		orphaned: make(map[string]bool),

		maxReplicas: v.Cluster().Settings.ReplicaLimit(),
		view:        v,
		specs:       make(map[specKey]*api.ServiceSpec),
	}
	return p
}

// service returns the service with id in this pass's view, or nil.
func (p *pass) service(id string) *api.Service {
	if p.svcByID != nil {
		return p.svcByID[id]
	}
	if s, ok := p.looked[id]; ok {
		return s
	}
	if p.looked == nil {
		p.looked = make(map[string]*api.Service)
	}
	s := p.view.Service(id)
	p.looked[id] = s
	return s
}

// serviceNamed returns the service named name in this pass's view, or nil.
func (p *pass) serviceNamed(name string) *api.Service {
	if p.svcByName != nil {
		return p.svcByName[name]
	}
	return p.view.ServiceByName(name)
}

// loadAll files every task of the store: a full pass.
func (p *pass) loadAll() {
	p.services = p.view.Services()
	p.svcByID = make(map[string]*api.Service, len(p.services))
	p.svcByName = make(map[string]*api.Service, len(p.services))
	for _, s := range p.services {
		p.svcByID[s.ID], p.svcByName[s.Spec.Name] = s, s
	}
	p.allNodes()
	p.all = p.view.TasksByID() // sortGroups orders each group
	for _, s := range p.services {
		p.bySvc[s.ID] = newServiceTasks()
	}
	for _, t := range p.all {
		p.file(t)
	}
	for _, st := range p.bySvc {
		st.sortGroups()
	}
}

// loadServices files the tasks of the services ids name (those that
// exist), of the services whose tasks wait for a node, and of the
// services those depend on (their verdicts hold the waiting tasks back),
// and the tasks of removed services (the reaper's): a narrowed pass.
// Tasks are orphaned as they are filed, so every service loaded here that
// lost a task to a node is reconciled.
func (p *pass) loadServices(ids map[string]bool) {
	want := maps.Clone(ids)
	for _, t := range p.awaiting {
		want[t.ServiceID] = true
	}
	for id := range maps.Clone(want) {
		if svc := p.service(id); svc != nil {
			for _, d := range svc.Spec.DependsOn {
				if dep := p.serviceNamed(d.Service); dep != nil {
					want[dep.ID] = true
				}
			}
		}
	}
	for _, svc := range p.servicesOf(want) { // in name order: a stable plan
		p.tasksOf(svc.ID)
	}
	for _, t := range p.view.TasksByDesiredState(api.TaskRemove) {
		p.file(t)
	}
	// The pass looks at every service it filed tasks of: filing the
	// tasks being removed can orphan a task of a service outside want.
	loaded := make(map[string]bool, len(p.bySvc))
	for id := range p.bySvc {
		loaded[id] = true
	}
	p.services = p.servicesOf(loaded)
}

// servicesOf returns the services ids name that exist, in the store's name
// order (Services).
func (p *pass) servicesOf(ids map[string]bool) []*api.Service {
	var out []*api.Service
	for id := range ids {
		if svc := p.service(id); svc != nil {
			out = append(out, svc)
		}
	}
	slices.SortFunc(out, raftstore.CompareServiceNames)
	return out
}

// tasksOf returns the tasks of service id by group, reading them from the
// store on first use.
func (p *pass) tasksOf(id string) *serviceTasks {
	if st, ok := p.bySvc[id]; ok {
		return st
	}
	st := newServiceTasks()
	p.bySvc[id] = st
	if p.service(id) == nil {
		return st
	}
	for t := range p.view.EachTaskOfService(id) { // sortGroups orders them
		if t.DesiredState != api.TaskRemove { // loadServices files those
			p.file(t)
		}
	}
	st.sortGroups()
	return st
}

// file puts one task as read where the rules look for it: its group, or
// the reaper's list when its service is gone.
func (p *pass) file(t *api.Task) {
	t = p.orphanIfNodeLost(t)
	svc := p.service(t.ServiceID)
	if svc == nil || t.DesiredState == api.TaskRemove {
		p.removed = append(p.removed, t)
		return
	}
	p.bySvc[svc.ID].group(keyOf(svc, t)).add(t)
}

// sortGroups orders each group's lists, oldest first.
func (st *serviceTasks) sortGroups() {
	for _, g := range st.groups {
		for _, ts := range [][]*api.Task{g.live, g.dead, g.past} {
			slices.SortFunc(ts, olderTask)
		}
	}
}

// node returns the node with id, or nil.
func (p *pass) node(id string) *api.Node {
	n, ok := p.nodeByID[id]
	if !ok && p.nodes == nil {
		n = p.view.Node(id)
		p.nodeByID[id] = n
	}
	return n
}

// allNodes returns every node, sorted by hostname then id.
func (p *pass) allNodes() []*api.Node {
	if p.nodes == nil {
		p.nodes = p.view.Nodes()
		clear(p.nodeByID)
		for _, n := range p.nodes {
			p.nodeByID[n.ID] = n
		}
	}
	return p.nodes
}

func keyOf(svc *api.Service, t *api.Task) groupKey {
	if svc.Spec.Mode == api.ModeGlobal {
		return groupKey{node: t.NodeID}
	}
	return groupKey{slot: t.Slot}
}

// orphanIfNodeLost ends a task whose node is down or removed: it will not
// run again, and the reconcilers replace it at once (no restart delay, as
// the task itself did not fail).
func (p *pass) orphanIfNodeLost(t *api.Task) *api.Task {
	if t.NodeID == "" || t.Status.State.Terminal() {
		return t
	}
	n := p.node(t.NodeID)
	if n == nil || n.Status == api.NodeDown {
		p.orphaned[t.ServiceID] = true
	}
	switch {
	case n == nil:
		return p.plan.orphan(t, fmt.Sprintf("node %s was removed", t.NodeID))
	case n.Status == api.NodeDown:
		return p.plan.orphan(t, fmt.Sprintf("node %s (%s) is down", n.Hostname, n.ID))
	}
	return t
}

// shutdown tells t (a task of group g) to stop.
func (p *pass) shutdown(g *group, t *api.Task, msg string) {
	g.put(p.plan.shutdown(t, msg))
}

// create adds a task to group g of svc.
func (p *pass) create(svc *api.Service, g *group, notBefore time.Time) *api.Task {
	t := p.plan.create(svc, g.key.slot, g.key.node, g.nextAttempt(), notBefore)
	g.put(t)
	return t
}

// wakeAt asks for a pass at time at (the earliest request wins).
func (p *pass) wakeAt(at time.Time) {
	if !at.After(p.now) {
		return
	}
	if p.wake.IsZero() || at.Before(p.wake) {
		p.wake = at
	}
	if p.cur != "" {
		if w, ok := p.wakes[p.cur]; !ok || at.Before(w) {
			p.wakes[p.cur] = at
		}
	}
}

// specOf returns the spec task t runs, from the store (nil if it does not
// hold it, which it does for every task's version). Every task of a
// version shares one lookup.
func (p *pass) specOf(t *api.Task) *api.ServiceSpec {
	k := specKey{t.ServiceID, t.SpecVersion}
	s, ok := p.specs[k]
	if !ok {
		s = p.view.ServiceSpec(t.ServiceID, t.SpecVersion)
		p.specs[k] = s
	}
	return s
}

// up reports whether t counts as up (api.TaskUp with its own spec).
func (p *pass) up(t *api.Task) bool { return api.TaskUp(t, p.specOf(t)) }

// dirtySpec reports whether t runs an older spec that differs from svc's in
// anything the task runs with. Changes that only concern the orchestrators
// (replicas, update and restart policy, depends_on) do not replace tasks;
// a task whose spec is not known is replaced.
func (p *pass) dirtySpec(svc *api.Service, t *api.Task) bool {
	if t.SpecVersion == svc.SpecVersion {
		return false
	}
	k := specKey{svc.ID, t.SpecVersion}
	d, ok := p.dirty[k]
	if !ok {
		old := p.specOf(t)
		d = old == nil || !bytes.Equal(runtimeSpec(old), runtimeSpec(&svc.Spec))
		p.dirty[k] = d
	}
	return d
}

// runtimeSpec encodes the part of a spec a running task depends on
// (api.RuntimeSpec).
func runtimeSpec(s *api.ServiceSpec) []byte { return api.EncodeRuntimeSpec(s) }
