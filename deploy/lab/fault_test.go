package lab

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// labReplicas is the size of the service every lab subtest runs against:
// two replicas on each of the three agent hosts.
const labReplicas = 6

// baseline brings the lab back to the state every subtest starts from, so
// that one subtest's damage does not leak into the next: every host linked
// and its daemons running, a leader, every node ready, and the demo service
// with labReplicas replicas running, two on each agent host, each with its
// container running.
func baseline(ctx context.Context, t *testing.T, l *Lab) {
	t.Helper()
	for _, h := range l.Hosts {
		if h.Role == RoleAgent && h.Procs["containerd"].Alive() && !h.Procs["agent"].Alive() {
			if err := l.StartAgent(ctx, h.Name); err != nil {
				t.Fatalf("baseline: %v", err)
			}
		}
		if err := l.Restore(ctx, h.Name); err != nil {
			t.Fatalf("baseline: restore %s: %v", h.Name, err)
		}
	}
	if err := l.waitManagers(ctx, 3, 30*time.Second); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	c, err := l.dialManagers(true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if notReady := l.notReady(ctx, c, 10*time.Second); len(notReady) > 0 {
		// An agent whose session is stuck with a manager that no longer
		// leads (one of the faults these tests look for) is restarted whole.
		t.Logf("baseline: nodes %v not ready; restarting those hosts", notReady)
		for _, name := range notReady {
			l.Kill(name)
			if err := l.Restore(ctx, name); err != nil {
				t.Fatalf("baseline: restore %s: %v", name, err)
			}
		}
		if notReady := l.notReady(ctx, c, 30*time.Second); len(notReady) > 0 {
			t.Fatalf("baseline: nodes still not ready after their hosts restarted: %s", l.describeNodes(ctx, c, notReady))
		}
	}
	if p, err := l.TakePlacement(ctx, c, DemoService); err == nil && balanced(p) {
		return
	}
	_ = l.Ctl(ctx, io.Discard, "service", "rm", DemoService)
	if _, err := l.Deploy(ctx, io.Discard, labReplicas); err != nil {
		t.Fatalf("baseline: deploy: %v", err)
	}
	err = waitFor(ctx, 30*time.Second, func() error {
		p, err := l.TakePlacement(ctx, c, DemoService)
		if err == nil && !balanced(p) {
			err = fmt.Errorf("%d replicas running (%v per host), containers missing for %v", len(p.Tasks), p.PerHost(), p.missingProcs())
		}
		return err
	})
	if err != nil {
		t.Fatalf("baseline: %v", err)
	}
}

// balanced reports whether p has labReplicas replicas, as many on each
// agent host, each with its container running.
func balanced(p Placement) bool {
	per := p.PerHost()
	return len(p.Tasks) == labReplicas && len(p.missingProcs()) == 0 &&
		per["a1"] == labReplicas/3 && per["a2"] == labReplicas/3 && per["a3"] == labReplicas/3
}

// notReady waits up to timeout for every agent host's node to be ready and
// returns those that are not.
func (l *Lab) notReady(ctx context.Context, c *client, timeout time.Duration) []string {
	var missing []string
	_ = waitFor(ctx, timeout, func() error {
		missing = nil
		nodes, err := c.nodes(ctx)
		ready := map[string]bool{}
		for _, n := range nodes {
			ready[n.GetHostname()] = n.GetStatus() == "ready"
		}
		for _, h := range l.ByRole(RoleAgent) {
			if !ready[h.Name] {
				missing = append(missing, h.Name)
			}
		}
		if err == nil && len(missing) > 0 {
			err = fmt.Errorf("not ready: %v", missing)
		}
		return err
	})
	return missing
}

// describeNodes says, for each agent host named, what the leader says of
// its node and which session its agent's log last tells of.
func (l *Lab) describeNodes(ctx context.Context, c *client, hosts []string) string {
	nodes, err := c.nodes(ctx)
	if err != nil {
		return fmt.Sprintf("%v (nodes unreadable: %v)", hosts, err)
	}
	var out []string
	for _, name := range hosts {
		desc := name + ": no node"
		for _, n := range nodes {
			if n.GetHostname() == name {
				desc = fmt.Sprintf("%s: %s (%s)", name, n.GetStatus(), n.GetStatusMessage())
			}
		}
		if s, ok, err := l.AgentSession(name, 0); err == nil && ok {
			desc += "; agent session " + s.String()
		}
		out = append(out, desc)
	}
	return strings.Join(out, "; ")
}

// testManagerFault breaks one manager (the leader or a follower; its link
// or its process) under a running service: within the measurement's
// patience a write succeeds, every agent holds a session with the leader of
// the survivors (its log says so, and every node is ready), and, after the
// manager is restored and rejoined as a follower, no node was ever marked
// down, no task was stopped or created, and every container is the process
// it was.
func testManagerFault(ctx context.Context, t *testing.T, l *Lab, fault ManagerFault) {
	f, err := l.MeasureManagerFault(ctx, fault, DemoService)
	t.Logf("%s", f)
	for i, s := range f.AgentSessions {
		t.Logf("  agent session %d: %s", i+1, s)
	}
	if err != nil {
		t.Errorf("%s of %s: %v", fault, f.Faulted, err)
	}
	if len(f.NodesDown) > 0 {
		t.Errorf("nodes marked down: %v", f.NodesDown)
	}
	if len(f.TaskChanges) > 0 {
		t.Errorf("the managers stopped or made tasks of %s:\n  %s", DemoService, strings.Join(f.TaskChanges, "\n  "))
	}
	if len(f.Changes) > 0 {
		t.Errorf("the running replicas changed (%d restarts):\n  %s", f.Restarts, strings.Join(f.Changes, "\n  "))
	}
}

// testAgentRestart stops an agent with SIGTERM, as a planned restart does,
// and starts it again after down: the node is never marked down (and, when
// down leaves time to see it, is shown as restarting), the containers keep
// running while the agent is away, and once back the agent adopts them:
// the same task IDs, the same container processes, nothing started twice.
func testAgentRestart(ctx context.Context, t *testing.T, l *Lab, down time.Duration) {
	const host = "a2"
	c, err := l.dialManagers(true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	before, err := l.TakePlacement(ctx, c, DemoService)
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := l.StopAgent(ctx, host); err != nil {
		t.Fatal(err)
	}
	// While the agent is away its containers run on.
	err = hold(ctx, down, func() error { return sameContainers(l, before, host) })
	if err != nil {
		t.Errorf("while the agent of %s was stopped: %v", host, err)
	}
	if err := l.StartAgent(ctx, host); err != nil {
		t.Fatal(err)
	}
	ready := func() error {
		if missing := l.notReady(ctx, c, 0); len(missing) > 0 {
			return fmt.Errorf("nodes %v not ready", missing)
		}
		return nil
	}
	if err := waitFor(ctx, 30*time.Second, ready); err != nil {
		t.Fatalf("after the agent of %s came back: %v", host, err)
	}
	if err := hold(ctx, managerFaultSettle, ready); err != nil {
		t.Errorf("after the agent of %s came back: %v", host, err)
	}
	after, err := l.TakePlacement(ctx, c, DemoService)
	if err != nil {
		t.Fatal(err)
	}
	changes := w.NodeChanges(host)
	t.Logf("%s was stopped for %s; node statuses meanwhile: %v", host, down, changes)
	if slices.ContainsFunc(changes, func(ch NodeChange) bool { return ch.Status == "down" }) {
		t.Errorf("node %s was marked down during a planned restart: %v", host, changes)
	}
	if down >= 10*time.Second && !slices.ContainsFunc(changes, func(ch NodeChange) bool { return ch.Status == "restarting" }) {
		t.Errorf("node %s was never shown as restarting while its agent was away for %s: %v", host, down, changes)
	}
	if tc := w.TaskChanges(DemoService); len(tc) > 0 {
		t.Errorf("the managers stopped or made tasks of %s:\n  %s", DemoService, strings.Join(tc, "\n  "))
	}
	if ch := before.Changes(after); len(ch) > 0 {
		t.Errorf("the running replicas changed (%d restarts):\n  %s", before.Restarts(after), strings.Join(ch, "\n  "))
	}
}

// sameContainers checks that every container of p on host is still the
// process it was.
func sameContainers(l *Lab, p Placement, host string) error {
	procs, err := l.ContainerProcs(host)
	if err != nil {
		return err
	}
	for id, h := range p.Tasks {
		if h == host && procs[id] != p.Procs[id] {
			return fmt.Errorf("container of task %s: process %+v, was %+v", id, procs[id], p.Procs[id])
		}
	}
	return nil
}

// restartHold is the short hold testRestartHoldPasses gives its agent.
const restartHold = 3 * time.Second

// testRestartHoldPasses stops an agent started with a short --restart-hold
// and does not start it again: the node is shown as restarting, then, once
// the hold has passed (not before), down, and its replicas are replaced on
// the other hosts as for a dead node. When the agent comes back at last it
// removes the containers of the replaced tasks.
func testRestartHoldPasses(ctx context.Context, t *testing.T, l *Lab) {
	const host = "a3"
	if err := l.RestartAgent(ctx, host, 0, "--restart-hold", restartHold.String()); err != nil {
		t.Fatalf("restart the agent of %s with --restart-hold %s: %v", host, restartHold, err)
	}
	c, err := l.dialManagers(true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	nodeID, err := l.nodeID(ctx, c, host)
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	stopped := time.Now()
	if err := l.StopAgent(ctx, host); err != nil {
		t.Fatal(err)
	}
	err = waitFor(ctx, restartHold+30*time.Second, func() error {
		tasks, err := c.tasks(ctx, DemoService)
		if err != nil {
			return err
		}
		if _, running := converged(tasks, labReplicas, nodeID); !running {
			return fmt.Errorf("not all %d replicas run off %s", labReplicas, host)
		}
		return nil
	})
	changes := w.NodeChanges(host)
	t.Logf("node statuses of %s after its agent stopped: %v", host, changes)
	if err != nil {
		t.Fatalf("%s's hold of %s passed: %v", host, restartHold, err)
	}
	checkHeldThenDown(t, host, changes, stopped)
	if err := l.StartAgent(ctx, host); err != nil {
		t.Fatal(err)
	}
	err = waitFor(ctx, 30*time.Second, func() error {
		if n, err := l.Containers(host); err != nil || n > 0 {
			return fmt.Errorf("%s still holds %d containers of replaced tasks (%v)", host, n, err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// checkHeldThenDown checks that a node whose agent stopped at stopped was
// first restarting, and marked down only once restartHold had passed.
func checkHeldThenDown(t *testing.T, host string, changes []NodeChange, stopped time.Time) {
	t.Helper()
	held := slices.IndexFunc(changes, func(ch NodeChange) bool { return ch.Status == "restarting" })
	down := slices.IndexFunc(changes, func(ch NodeChange) bool { return ch.Status == "down" })
	switch {
	case held < 0:
		t.Errorf("node %s was never shown as restarting: %v", host, changes)
	case down < 0:
		t.Errorf("node %s was never marked down after its hold: %v", host, changes)
	case down < held:
		t.Errorf("node %s was marked down before it was held: %v", host, changes)
	case changes[down].At.Sub(stopped) < restartHold-time.Second:
		// The leader's clock stamps the change; a second of margin covers
		// the time SIGTERM takes to reach the leader as a restart.
		t.Errorf("node %s was marked down %s after its agent stopped, before its hold of %s passed",
			host, changes[down].At.Sub(stopped), restartHold)
	}
}
