package lab

import (
	"context"
	"fmt"
	"slices"
	"sort"
)

// Placement is what a fault of the control plane must leave alone: the
// running replicas of a service, each on its node, each with its container's
// process.
type Placement struct {
	Tasks map[string]string        // running task ID -> hostname of its node
	Procs map[string]ContainerProc // running task ID -> its container's process
}

// TakePlacement reads the running tasks of service through c and the
// processes of their containers from each agent host's containerd.
func (l *Lab) TakePlacement(ctx context.Context, c *client, service string) (Placement, error) {
	p := Placement{Tasks: map[string]string{}, Procs: map[string]ContainerProc{}}
	tasks, err := c.tasks(ctx, service)
	if err != nil {
		return p, err
	}
	nodes, err := c.nodes(ctx)
	if err != nil {
		return p, err
	}
	hostOf := map[string]string{}
	for _, n := range nodes {
		hostOf[n.GetId()] = n.GetHostname()
	}
	for _, t := range tasks {
		if t.GetDesiredState() == "running" && t.GetStatus().GetState() == "running" {
			p.Tasks[t.GetId()] = hostOf[t.GetNodeId()]
		}
	}
	for _, h := range l.ByRole(RoleAgent) {
		procs, err := l.ContainerProcs(h.Name)
		if err != nil {
			return p, err
		}
		for id, proc := range procs {
			if p.Tasks[id] == h.Name && proc.Status == "RUNNING" {
				p.Procs[id] = proc
			}
		}
	}
	return p, nil
}

// PerHost counts the running tasks on each agent host.
func (p Placement) PerHost() map[string]int {
	n := map[string]int{}
	for _, host := range p.Tasks {
		n[host]++
	}
	return n
}

// Changes lists how now differs from p: replicas that no longer run (or run
// elsewhere), replicas that appeared, and containers whose process is not
// the one that ran before (restarted, or gone).
func (p Placement) Changes(now Placement) []string {
	var out []string
	for id, host := range p.Tasks {
		switch nowHost, ok := now.Tasks[id]; {
		case !ok:
			out = append(out, fmt.Sprintf("task %s (on %s) no longer runs", id, host))
		case nowHost != host:
			out = append(out, fmt.Sprintf("task %s moved from %s to %s", id, host, nowHost))
		}
		before, after := p.Procs[id], now.Procs[id]
		switch {
		case after.PID == 0:
			out = append(out, fmt.Sprintf("container of task %s (on %s): process %d gone", id, host, before.PID))
		case after != before:
			out = append(out, fmt.Sprintf("container of task %s (on %s): process %d (start %d) is now %d (start %d)",
				id, host, before.PID, before.Start, after.PID, after.Start))
		}
	}
	for id, host := range now.Tasks {
		if _, ok := p.Tasks[id]; !ok {
			out = append(out, fmt.Sprintf("task %s appeared on %s", id, host))
		}
	}
	sort.Strings(out)
	return out
}

// Restarts counts the replicas of p whose container process did not
// survive into now: stopped, restarted or replaced.
func (p Placement) Restarts(now Placement) int {
	n := 0
	for id := range p.Tasks {
		if _, ok := now.Tasks[id]; !ok || now.Procs[id] != p.Procs[id] {
			n++
		}
	}
	return n
}

// missingProcs lists the running tasks of p without a running container.
func (p Placement) missingProcs() []string {
	var out []string
	for id := range p.Tasks {
		if p.Procs[id].PID == 0 {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}
