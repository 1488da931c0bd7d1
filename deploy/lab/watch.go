package lab

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// Watcher records every node status and every task change the managers
// apply, from an event stream on each manager (every manager applies the
// same log, so the streams are merged by log index). A node that is marked
// down for a moment, or a task that is replaced, shows in it even when a
// later poll would find everything back in place.
type Watcher struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// after is the highest log index any manager had applied when the
	// watch began: a manager that restarts replays its log into its
	// stream, and what it replays up to there is old news.
	after uint64

	mu     sync.Mutex
	seen   map[string]bool
	events []*shoalpb.Event // in the order first seen
	broken []string         // streams that ended, with why
}

// watchSubscribeTimeout bounds the wait for every manager's stream to be
// subscribed when a Watcher starts.
const watchSubscribeTimeout = 10 * time.Second

// Watch starts a Watcher on every running manager of the lab and returns
// once each stream is subscribed (every change after that reaches it);
// Stop ends it.
func (l *Lab) Watch(ctx context.Context) (*Watcher, error) {
	c, err := l.dialManagers(false)
	if err != nil {
		return nil, err
	}
	after, err := appliedIndex(ctx, c)
	if err != nil {
		c.close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &Watcher{cancel: cancel, seen: map[string]bool{}, after: after}
	subscribed := make(chan string, len(c.ctl))
	for i, ctl := range c.ctl {
		w.wg.Go(func() { w.follow(ctx, c.hosts[i].Name, ctl, subscribed) })
	}
	go func() {
		w.wg.Wait()
		c.close()
	}()
	timeout := time.After(watchSubscribeTimeout)
	for range c.ctl {
		select {
		case <-subscribed:
		case <-timeout:
			w.Stop()
			return nil, fmt.Errorf("event streams not all subscribed within %s: %v", watchSubscribeTimeout, w.Broken())
		}
	}
	return w, nil
}

// follow reads one manager's stream, subscribing again (with a pause) when
// it breaks, e.g. while that manager is killed, until ctx ends. It says on
// subscribed when its first subscription holds.
func (w *Watcher) follow(ctx context.Context, host string, ctl shoalpb.ControlClient, subscribed chan<- string) {
	first := true
	for ctx.Err() == nil {
		stream, err := ctl.Events(ctx, &shoalpb.EventsRequest{})
		if err == nil {
			// The server sends headers once it is subscribed.
			_, err = stream.Header()
		}
		if err == nil && first {
			first = false
			subscribed <- host
		}
		for err == nil {
			var ev *shoalpb.Event
			if ev, err = stream.Recv(); err == nil {
				w.add(ev)
			}
		}
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		w.broken = append(w.broken, fmt.Sprintf("%s: %v", host, err))
		w.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// appliedIndex is the highest log index the managers of c have applied.
func appliedIndex(ctx context.Context, c *client) (uint64, error) {
	var top uint64
	for i, ctl := range c.ctl {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := ctl.ClusterStatus(cctx, &shoalpb.ClusterStatusRequest{Stale: true})
		cancel()
		if err != nil {
			return 0, fmt.Errorf("%s: cluster status: %w", c.hosts[i].Name, err)
		}
		top = max(top, st.GetAppliedIndex())
	}
	return top, nil
}

func (w *Watcher) add(ev *shoalpb.Event) {
	if index(ev) <= w.after {
		return
	}
	key := strings.Join([]string{ev.GetAttributes()["index"], ev.GetType(), ev.GetAction(), ev.GetId()}, "/")
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.seen[key] {
		w.seen[key] = true
		w.events = append(w.events, ev)
	}
}

// Stop ends the streams.
func (w *Watcher) Stop() {
	w.cancel()
	w.wg.Wait()
}

// Events returns the events seen so far, in log order.
func (w *Watcher) Events() []*shoalpb.Event {
	w.mu.Lock()
	out := slices.Clone(w.events)
	w.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return index(out[i]) < index(out[j]) })
	return out
}

func index(ev *shoalpb.Event) uint64 {
	var n uint64
	fmt.Sscan(ev.GetAttributes()["index"], &n)
	return n
}

// NodeChange is a status a node was given, and when (the leader's clock).
type NodeChange struct {
	Status string
	At     time.Time
}

// NodeChanges returns the statuses node hostname was given, in log order,
// one entry per change of status.
func (w *Watcher) NodeChanges(hostname string) []NodeChange {
	var out []NodeChange
	for _, ev := range w.Events() {
		if ev.GetType() != "node" || ev.GetName() != hostname {
			continue
		}
		if st := ev.GetAttributes()["status"]; len(out) == 0 || out[len(out)-1].Status != st {
			out = append(out, NodeChange{Status: st, At: ev.GetTime().AsTime()})
		}
	}
	return out
}

// NodesMarked lists the nodes that were given status, e.g. "down".
func (w *Watcher) NodesMarked(status string) []string {
	var out []string
	for _, ev := range w.Events() {
		if ev.GetType() == "node" && ev.GetAttributes()["status"] == status && !slices.Contains(out, ev.GetName()) {
			out = append(out, ev.GetName())
		}
	}
	return out
}

// TaskChanges describes every change to the tasks of service other than a
// running task staying running: tasks created, and tasks whose state or
// desired state left running. An ended task that was already told to stop
// before the watch began (a replaced or removed one, whose record the
// reaper trims later) changed nothing that runs: it is left out.
func (w *Watcher) TaskChanges(service string) []string {
	var out []string
	live := map[string]bool{} // tasks seen not yet ended, or created
	for _, ev := range w.Events() {
		a := ev.GetAttributes()
		if ev.GetType() != "task" || a["service"] != service {
			continue
		}
		if ev.GetAction() == "create" || !ended(a) {
			live[ev.GetId()] = true
		}
		switch {
		case ev.GetAction() == "create":
			out = append(out, fmt.Sprintf("task %s created (%s)", ev.GetId(), ev.GetName()))
		case ended(a) && !live[ev.GetId()]:
		case a["state"] != "running" || a["desired_state"] != "running":
			out = append(out, fmt.Sprintf("task %s (%s) %s: now %s, desired %s", ev.GetId(), ev.GetName(), ev.GetAction(), a["state"], a["desired_state"]))
		}
	}
	return out
}

// ended: the event's task has ended and is not wanted running.
func ended(a map[string]string) bool {
	st, err := api.ParseTaskState(a["state"])
	return err == nil && st.Terminal() && a["desired_state"] != "running"
}

// Broken lists the streams that ended while watching, and why.
func (w *Watcher) Broken() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.broken)
}
