package agent

import (
	"context"
	"time"

	"github.com/shoal-sched/shoal/agent/network"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// DataPlane wires the network namespaces of the agent's tasks
// (agent/network is the real one). Without one, every task shares the
// agent host's namespace, as before networks existed.
type DataPlane interface {
	// SetView takes the leader's network view (level-triggered: the data
	// plane reconciles the kernel against the latest one).
	SetView(v *api.NetworkView)
	// Attach makes (or repairs) a task's namespace before its container
	// starts.
	Attach(ctx context.Context, sb network.Sandbox) (network.Wiring, error)
	// Release removes it once the container is gone.
	Release(taskID string) error
	// Prune removes the namespaces of tasks not in keep (at start).
	Prune(keep map[string]bool) error
	// Run repairs the data plane until ctx ends.
	Run(ctx context.Context) error
	// Remove deletes everything the data plane made (a leaving agent);
	// Close only lets go of it (a restarting agent adopts it).
	Remove() error
	Close()
}

// attachTimeout bounds how long a task waits for its networks to appear in
// the agent's view before it is rejected (and placed again).
const attachTimeout = 30 * time.Second

// sandboxOf is what a task asks of the data plane; ok is false for a task
// on the host network (no namespace of its own).
func sandboxOf(t *api.Task) (sb network.Sandbox, ok bool) {
	sb = network.Sandbox{TaskID: t.ID, Stack: t.RunSpec().Labels[api.LabelStack]}
	switch {
	case api.NoNetwork(t.RunSpec()):
		sb.None = true
	case len(t.Networks) > 0:
		sb.Attachments = api.CloneAttachments(t.Networks)
	default:
		return sb, false
	}
	return sb, true
}

// attach wires the task's namespace; the zero ContainerNetwork (host
// networking) when the task is on the host, or when the agent runs
// without a data plane (the fake runtime of simulations, or
// --networks=false): its tasks all share the host's network, as before
// networks existed.
func (w *worker) attach(ctx context.Context, t *api.Task) (ContainerNetwork, error) {
	sb, ok := sandboxOf(t)
	if !ok {
		return ContainerNetwork{}, nil
	}
	if w.dp == nil {
		w.log.Warn("task on networks runs on the host network: this agent has no data plane", "task_id", t.ID)
		return ContainerNetwork{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, attachTimeout)
	defer cancel()
	wr, err := w.dp.Attach(ctx, sb)
	if err != nil {
		return ContainerNetwork{}, err
	}
	return ContainerNetwork{NetNS: wr.NetNS, ResolvConf: wr.ResolvConf, Hosts: wr.Hosts, Hostname: wr.Hostname}, nil
}

// release removes a task's namespace (nothing for a host-network task).
func (w *worker) release(t *api.Task) error {
	if _, ok := sandboxOf(t); w.dp == nil || !ok {
		return nil
	}
	return w.dp.Release(t.ID)
}

// readopt wires again, in the background, the namespace of a container
// adopted running, so the data plane repairs it and serves its DNS.
func (w *worker) readopt(ctx context.Context, t *api.Task) {
	if _, ok := sandboxOf(t); w.dp == nil || !ok {
		return
	}
	go func() {
		if _, err := w.attach(ctx, t); err != nil && ctx.Err() == nil {
			w.log.Warn("re-wiring an adopted container's network failed", "task_id", t.ID, "err", err)
		}
	}()
}

// setNetworkView hands a view from the session to the data plane.
func (a *Agent) setNetworkView(v *shoalpb.NetworkView) {
	if a.cfg.DataPlane == nil || v == nil {
		return
	}
	a.cfg.DataPlane.SetView(shoalpb.ToNetworkView(v))
}

// pruneNetworks removes, at start, the namespaces of tasks whose
// containers do not run any more (the agent died with them).
func (w *worker) pruneNetworks(started []*runner, containers map[string]Container) {
	if w.dp == nil {
		return
	}
	keep := map[string]bool{}
	for _, r := range started {
		if c, ok := containers[r.id]; ok && c.Running {
			keep[r.id] = true
		}
	}
	if err := w.dp.Prune(keep); err != nil {
		w.log.Warn("removing the namespaces of gone tasks failed", "err", err)
	}
}
