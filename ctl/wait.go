package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// pollInterval is how often shoalctl reads the state while it waits: three
// small reads (services, tasks, nodes) five times a second at most.
const pollInterval = 200 * time.Millisecond

// defaultWaitTimeout is --timeout for commands that wait for tasks, when
// it is not given: long enough for image pulls and restart delays.
const defaultWaitTimeout = 3 * time.Minute

// ErrNotConverged is wrapped by the error of a wait that ended without
// convergence: a failure beyond the restart policy, or --timeout.
var ErrNotConverged = errors.New("did not converge")

// waitFlags are --detach and the timeout it implies.
type waitFlags struct {
	detach bool
}

func (w *waitFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&w.detach, "detach", "d", false,
		"return once the change is committed instead of waiting for the tasks (waiting is bounded by --timeout, default 3m)")
}

// registerQuiet adds -q, which keeps the result on stdout and leaves out
// the progress of the wait on stderr, as docker's -q does.
func (g *globals) registerQuiet(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&g.quiet, "quiet", "q", false, "print only the result (IDs), no progress while waiting")
}

// silentProgress shows nothing (-q).
type silentProgress struct{}

func (silentProgress) show([]view) {}

// prepareWait gives a command that will wait the longer default timeout,
// unless --timeout was given.
func (g *globals) prepareWait(cmd *cobra.Command, waits bool) {
	if waits && !cmd.Flags().Changed("timeout") {
		g.timeout = defaultWaitTimeout
	}
}

// readCluster reads what a wait looks at, in three requests.
func readCluster(ctx context.Context, c *client) (*cluster, error) {
	svcs, err := listServicePages(ctx, c, false)
	if err != nil {
		return nil, err
	}
	tasks, err := listTasks(ctx, c, &shoalpb.ListTasksRequest{})
	if err != nil {
		return nil, err
	}
	nodes, err := listNodes(ctx, c, false)
	if err != nil {
		return nil, err
	}
	cl := &cluster{services: map[string]*shoalpb.Service{}, tasks: tasks.GetTasks(), nodes: nodes.GetNodes(), hosts: hostnamesOf(nodes.GetNodes())}
	for _, s := range svcs.GetServices() {
		cl.services[s.GetService().GetId()] = s.GetService()
	}
	return cl, nil
}

// waitServices waits until the services with these IDs converge, showing
// their progress on stderr. minIndex is the Raft index of the write waited
// for: a manager's watch starts only once it has applied it, so a
// follower a little behind never shows the state from before the write.
func (g *globals) waitServices(ctx context.Context, c *client, ids []string, minIndex uint64, hint string) error {
	return g.waitServicesAt(ctx, c, ids, nil, minIndex, hint)
}

// waitServicesAt waits as waitServices does for the spec versions a write
// committed (versions by ID; a service not in it: the version first seen),
// so that a rollout of that version that pauses or is rolled back ends the
// wait with its reason.
func (g *globals) waitServicesAt(ctx context.Context, c *client, ids []string, versions map[string]uint64, minIndex uint64, hint string) error {
	want := map[string]uint64{}
	for id, v := range versions {
		want[id] = v
	}
	var old map[string]bool
	seen := map[string]bool{}
	sel := []*shoalpb.WatchSelector{{Kind: "node"}}
	for _, id := range ids {
		sel = append(sel, &shoalpb.WatchSelector{Kind: "service", Service: id}, &shoalpb.WatchSelector{Kind: "task", Service: id})
	}
	return g.wait(ctx, c, hint, minIndex, sel, func(cl *cluster) []view {
		if old == nil {
			old = map[string]bool{}
			for _, t := range cl.tasks {
				if taskState(t).Terminal() {
					old[t.GetId()] = true
				}
			}
		}
		var views []view
		for _, id := range ids {
			svc, ok := cl.services[id]
			switch {
			case !ok && seen[id]:
				views = append(views, view{name: id, failure: "the service was removed while shoalctl waited"})
				continue
			case !ok:
				// Not on this manager yet (the write's index was not
				// known): only a service seen and then gone was removed.
				views = append(views, view{name: id, summary: "waiting for the service to show on this manager"})
				continue
			}
			seen[id] = true
			if want[id] == 0 {
				want[id] = svc.GetSpecVersion()
			}
			v := viewService(svc, cl, old)
			foldRollout(&v, svc, want[id])
			views = append(views, v)
		}
		return views
	})
}

// waitDrain waits until no task holds resources on the node any more.
func (g *globals) waitDrain(ctx context.Context, c *client, nodeID string, minIndex uint64) error {
	var watch map[string]bool
	// The drain looks at the replacements on other nodes too: all tasks.
	sel := []*shoalpb.WatchSelector{{Kind: "node"}, {Kind: "task"}}
	return g.wait(ctx, c, "see shoalctl service ps", minIndex, sel, func(cl *cluster) []view {
		var node *shoalpb.Node
		for _, n := range cl.nodes {
			if n.GetNode().GetId() == nodeID {
				node = n.GetNode()
			}
		}
		if node == nil {
			return []view{{name: nodeID, failure: "the node was removed while shoalctl waited"}}
		}
		if watch == nil {
			watch = map[string]bool{}
			for _, t := range cl.tasks {
				if t.GetNodeId() == nodeID && taskState(t).Active() {
					watch[t.GetId()] = true
				}
			}
		}
		return []view{viewDrain(node, cl.tasks, watch, cl.hosts)}
	})
}

// wait follows a watch of what sel passes, from a state that holds index
// minIndex at least, until look says every view converged, one failed, or
// --timeout passes. hint tells the user where to look on failure. A
// manager without Watch is polled instead.
func (g *globals) wait(ctx context.Context, c *client, hint string, minIndex uint64, sel []*shoalpb.WatchSelector, look func(*cluster) []view) error {
	app := g.app
	deadline := app.Now().Add(g.timeout)
	prog := g.waitProgress()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates, ticks, errc := make(chan *cluster, 1), make(chan struct{}, 1), make(chan error, 1)
	go func() {
		m := newMirror()
		m.minIndex = minIndex
		errc <- watchMirror(wctx, c, sel, m, func() {
			cl := m.cluster()
			select { // keep only the newest
			case <-updates:
			default:
			}
			updates <- cl
		})
	}()
	started := make(chan struct{})
	go func() {
		// Settling and the deadline move with time, not only with
		// changes; the clock starts with the first state seen.
		select {
		case <-started:
		case <-wctx.Done():
			return
		}
		for app.sleep(wctx, pollInterval) == nil {
			select {
			case ticks <- struct{}{}:
			default:
			}
		}
	}()
	var cl *cluster
	var views []view
	stable := map[string]settling{}
	for {
		select {
		case next := <-updates:
			if cl == nil {
				close(started)
			}
			cl = next
		case <-ticks:
		case err := <-errc:
			if errors.Is(err, errNoWatch) {
				cancel()
				return g.pollWait(ctx, c, hint, deadline, look)
			}
			return g.waitEnded(ctx, views, rpcError("", err), hint)
		}
		if cl != nil {
			views = look(cl)
			settle(views, stable, app.Now())
			prog.show(views)
			if err := failed(views); err != nil {
				return fmt.Errorf("%w; %s", err, hint)
			}
			if converged(views) {
				return nil
			}
		}
		if ctx.Err() != nil || !app.Now().Before(deadline) {
			return g.waitEnded(ctx, views, nil, hint)
		}
	}
}

func (g *globals) waitProgress() progress {
	if g.quiet {
		return silentProgress{}
	}
	return newProgress(g.app.Err, g.app.terminal(g.app.Err))
}

// pollWait is wait for a manager without Watch: it reads the services,
// tasks and nodes every pollInterval.
func (g *globals) pollWait(ctx context.Context, c *client, hint string, deadline time.Time, look func(*cluster) []view) error {
	app := g.app
	prog := g.waitProgress()
	var views []view
	var readErr error
	stable := map[string]settling{}
	for {
		cl, err := readCluster(ctx, c)
		switch {
		case err == nil:
			readErr = nil
			views = look(cl)
			settle(views, stable, app.Now())
			prog.show(views)
			if err := failed(views); err != nil {
				return fmt.Errorf("%w; %s", err, hint)
			}
			if converged(views) {
				return nil
			}
		case ctx.Err() == nil:
			// A manager that cannot answer for a moment (leader election)
			// is retried until the deadline.
			readErr = rpcError("", err)
		}
		if ctx.Err() != nil || !app.Now().Before(deadline) {
			return g.waitEnded(ctx, views, readErr, hint)
		}
		if err := app.sleep(ctx, pollInterval); err != nil {
			return g.waitEnded(ctx, views, readErr, hint)
		}
	}
}

// settling is since when a view has been converged with the same tasks.
type settling struct {
	since time.Time
	sig   string
}

// settle holds back the views that have not stayed converged, with the
// same tasks, for their settle period yet.
func settle(views []view, stable map[string]settling, now time.Time) {
	for i := range views {
		v := &views[i]
		if !v.converged {
			delete(stable, v.name)
			continue
		}
		s, ok := stable[v.name]
		if !ok || s.sig != v.sig {
			s = settling{since: now, sig: v.sig}
			stable[v.name] = s
		}
		if now.Sub(s.since) < v.settle {
			v.converged, v.settling = false, true
		}
	}
}

func failed(views []view) error {
	var errs []error
	for _, v := range views {
		if v.failure != "" {
			errs = append(errs, fmt.Errorf("%s %w: %s", v.name, ErrNotConverged, v.failure))
		}
	}
	return errors.Join(errs...)
}

func converged(views []view) bool {
	for _, v := range views {
		if !v.converged {
			return false
		}
	}
	return true
}

// waitEnded explains a wait that ran out of time or was interrupted. The
// change itself stays committed either way.
func (g *globals) waitEnded(ctx context.Context, views []view, readErr error, hint string) error {
	var parts []string
	for _, v := range views {
		if v.converged {
			continue
		}
		part := v.name + " " + v.status()
		if s := slotsText(v); s != "" {
			part += " (" + s + ")"
		}
		parts = append(parts, part)
	}
	state := strings.Join(parts, "; ")
	if readErr != nil {
		state = strings.TrimPrefix(state+"; last read failed: "+readErr.Error(), "; ")
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("interrupted while waiting: %s; the change is committed and the cluster keeps working on it (%s)", state, hint)
	}
	return fmt.Errorf("%w within --timeout %s: %s; the change is committed and the cluster keeps working on it (%s)",
		ErrNotConverged, g.timeout, state, hint)
}
