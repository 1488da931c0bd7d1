package ctl

import (
	"testing"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// BenchmarkServiceLs measures one whole `shoalctl service ls` against a
// fakeControl on a unix socket: flag parsing, dial, one RPC, the table.
func BenchmarkServiceLs(b *testing.B) {
	host := serveUnix(b, newFakeControl())
	for b.Loop() {
		r := runCLI(b, host, "service", "ls")
		if r.code != 0 {
			b.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	}
}

// BenchmarkServicePsFailover measures `service ps` when the first manager
// in --host has no socket: the cost of skipping a dead address.
func BenchmarkServicePsFailover(b *testing.B) {
	host := missingSocket(b) + "," + serveUnix(b, newFakeControl())
	for b.Loop() {
		r := runCLI(b, host, "service", "ps", "web")
		if r.code != 0 {
			b.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	}
}

// BenchmarkViewService measures one poll's evaluation of a 100-replica
// service whose slots each hold a running task and two failed ones: the
// client-side cost of a wait, per poll and service.
func BenchmarkViewService(b *testing.B) {
	f := newFakeControl()
	svc := f.services[0]
	svc.Spec.Replicas = 100
	var tasks []*shoalpb.Task
	for slot := uint64(1); slot <= 100; slot++ {
		tasks = append(tasks,
			scriptedTask(svc, slotTask{slot: slot, node: worker1, desired: "shutdown", state: "failed"}),
			scriptedTask(svc, slotTask{slot: slot, attempt: 1, node: worker1, desired: "shutdown", state: "failed"}),
			scriptedTask(svc, slotTask{slot: slot, attempt: 2, node: worker1, state: "running"}))
	}
	cl := &cluster{tasks: tasks, nodes: f.nodes, hosts: hostnamesOf(f.nodes)}
	old := map[string]bool{}
	for b.Loop() {
		if v := viewService(svc, cl, old); !v.converged {
			b.Fatalf("not converged: %s", v.status())
		}
	}
}
