package dispatcher

import (
	"context"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// seenTask is what the router last saw of a task: the part of it that
// decides what the agent of its node is told.
type seenTask struct {
	node string
	in   bool
	fp   fingerprint
}

func seen(t *api.Task) seenTask {
	return seenTask{node: t.NodeID, in: inSet(t), fp: fingerprint{desired: t.DesiredState, specVersion: t.SpecVersion}}
}

// routeChanges wakes the session of every node whose assignment set
// changed. A session then recomputes its set from the state
// (level-triggered); the router only spares sessions the changes that do
// not concern them, above all the status reports of their own agents. A
// dropped subscription costs waking everyone.
func (d *Dispatcher) routeChanges(ctx context.Context) error {
	for ctx.Err() == nil {
		events, cancel := d.cfg.State.Subscribe(subscribeBuffer)
		// Read after subscribing: an event the view already holds then
		// compares equal and wakes no one, and everyone wakes below.
		known := make(map[string]seenTask)
		for _, t := range d.cfg.State.Read().Tasks() {
			if t.NodeID != "" {
				known[t.ID] = seen(t)
			}
		}
		d.pokeAll()
		for _, s := range d.sessions.all() {
			d.endRevoked(s.nodeID)
		}
		d.route(ctx, events, known, newNetEvents())
		cancel()
	}
	return nil
}

func (d *Dispatcher) route(ctx context.Context, events <-chan []raftstore.Event, known map[string]seenTask, nets *netEvents) {
	for {
		select {
		case <-ctx.Done():
			return
		case batch, ok := <-events:
			if !ok {
				d.log.Warn("fell behind the state's changes; resyncing every session")
				return
			}
			net := false
			for _, ev := range batch {
				switch {
				case ev.Task != nil:
					d.routeTask(ev, known)
				case ev.Node != nil && ev.Action == "remove":
					d.endRevoked(ev.Node.ID)
				}
				net = nets.changes(ev) || net
			}
			if net {
				// Endpoints are cluster-wide: every session recomputes
				// its view (and sends it only if it changed).
				d.pokeAll()
			}
		}
	}
}

// routeTask wakes the sessions one task event concerns.
func (d *Dispatcher) routeTask(ev raftstore.Event, known map[string]seenTask) {
	t := ev.Task
	old, had := known[t.ID]
	if ev.Action == "remove" {
		delete(known, t.ID)
		if had && old.in {
			d.poke(old.node)
		}
		return
	}
	now := seen(t)
	if had && old == now {
		return
	}
	known[t.ID] = now
	if had && old.in && old.node != now.node {
		d.poke(old.node)
	}
	if now.node != "" && (now.in || (had && old.in)) {
		d.poke(now.node)
	}
}
