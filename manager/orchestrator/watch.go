package orchestrator

import (
	"maps"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

const (
	// DefaultFullEvery is how often a pass reconciles every service even
	// when no event named it: the safety net under the watch.
	DefaultFullEvery = 30 * time.Second
	// watchBuffer is how many event batches the watch holds while a pass
	// runs; a watcher further behind is dropped and resumes from its
	// index (or, past the history, with a full pass).
	watchBuffer = 1024
)

// scope is what a pass reconciles: the services named by the events since
// the last pass, or all of them. A narrowed pass reads only the tasks of
// those services and of the services it schedules (world.go), and the
// scheduling step offers every waiting task whatever the scope.
type scope struct {
	all      bool
	services map[string]bool
	// nodes changed: their tasks' services, and every global service,
	// are reconciled.
	nodes map[string]bool
}

func newScope(all bool) *scope {
	return &scope{all: all, services: make(map[string]bool), nodes: make(map[string]bool)}
}

// add folds one event in.
func (s *scope) add(e raftstore.Event) {
	switch {
	case e.Service != nil:
		s.services[e.Service.ID] = true
	case e.Task != nil:
		s.services[e.Task.ServiceID] = true
	case e.Node != nil:
		s.nodes[e.Node.ID] = true
	case e.Network != nil, e.Secret != nil:
		// Only the scheduling step reads them, and it runs whole.
	default:
		s.all = true
	}
}

// watcher follows the store's changes between passes.
type watcher struct {
	state *raftstore.State
	w     raftstore.Watch
	seen  uint64 // index of the last change folded in
	// drop, in tests, loses the events it says yes to (a missed event).
	drop func(raftstore.Event) bool
}

func newWatcher(state *raftstore.State) *watcher {
	w := state.WatchCurrent(watchBuffer)
	return &watcher{state: state, w: w, seen: w.Index}
}

func (w *watcher) cancel() { w.w.Cancel() }

// fold adds a batch received from the watch to sc; a closed watch (this
// watcher fell behind, or the state was replaced) is resumed from the last
// index seen, or, when the history no longer holds it, opened anew with a
// full pass.
func (w *watcher) fold(sc *scope, batch []raftstore.Event, ok bool) {
	if !ok {
		w.w.Cancel()
		nw, err := w.state.WatchFrom(w.seen, watchBuffer)
		if err != nil {
			nw = w.state.WatchCurrent(watchBuffer)
			w.seen = nw.Index
			sc.all = true
			w.w = nw
			return
		}
		w.w = nw
		batch = nw.Backlog
	}
	for _, e := range batch {
		if e.Index <= w.seen {
			continue
		}
		w.seen = e.Index
		if w.drop != nil && w.drop(e) {
			continue
		}
		sc.add(e)
	}
}

// drain folds every batch already waiting.
func (w *watcher) drain(sc *scope) {
	for {
		select {
		case b, ok := <-w.w.Events:
			w.fold(sc, b, ok)
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// needs is the services a narrowed pass reconciles, as far as the scope
// and the timers say (those it orphans a task of are added as their tasks
// are filed): those the events named, those due, and every global service
// when a node changed.
func (p *pass) needs(sc *scope, due map[string]bool) map[string]bool {
	out := maps.Clone(sc.services)
	for id := range due {
		out[id] = true
	}
	if len(sc.nodes) > 0 {
		for _, svc := range p.view.GlobalServices() {
			out[svc.ID] = true
		}
	}
	return out
}

// inScope reports whether this pass reconciles svc.
func (p *pass) inScope(sc *scope, due map[string]bool, svc *api.Service) bool {
	return sc == nil || sc.all || sc.services[svc.ID] || due[svc.ID] || p.orphaned[svc.ID] ||
		(svc.Spec.Mode == api.ModeGlobal && len(sc.nodes) > 0)
}

// widen adds to sc the services of the tasks on the changed nodes.
func (p *pass) widen(sc *scope) {
	if sc == nil || sc.all {
		return
	}
	for id := range sc.nodes {
		for _, t := range p.view.TasksByNode(id) {
			sc.services[t.ServiceID] = true
		}
	}
}
