package ctl

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// TestViewService checks what counts as converged, in progress and
// failed, one situation at a time.
func TestViewService(t *testing.T) {
	f := newFakeControl()
	nodes := f.nodes // worker-1 ready/active zone a, worker-2 down/drain, manager-1 ready/active zone a
	web := proto.Clone(f.services[0]).(*shoalpb.Service)
	web.Spec.Replicas = 2
	global := proto.Clone(f.services[1]).(*shoalpb.Service)
	global.Spec.Placement.Constraints = []string{"node.role==worker"}
	withRestart := func(cond string) *shoalpb.Service {
		s := proto.Clone(web).(*shoalpb.Service)
		s.Spec.RestartPolicy.Condition = cond
		return s
	}
	older := func(tk *shoalpb.Task) *shoalpb.Task {
		tk.Spec.Image = "busybox:1.35"
		return tk
	}
	tests := []struct {
		name      string
		svc       *shoalpb.Service
		tasks     []slotTask
		edit      func(tasks []*shoalpb.Task)
		old       []string
		converged bool
		done      int
		want      string // in the status, a slot text or the failure
	}{
		{"all running", web, []slotTask{{slot: 1, node: worker1, state: "running"}, {slot: 2, node: manager1, state: "running"}}, nil, nil, true, 2, "converged (2/2)"},
		{"one slot missing", web, []slotTask{{slot: 1, node: worker1, state: "running"}}, nil, nil, false, 1, "web.2: no task yet"},
		{"rolling update in progress", web, []slotTask{{slot: 1, node: worker1, state: "running"}, {slot: 2, node: manager1, state: "running"}},
			func(ts []*shoalpb.Task) { older(ts[1]) }, nil, false, 1, "(older spec, to be replaced)"},
		{"scale-down in progress", web, []slotTask{{slot: 1, node: worker1, state: "running"}, {slot: 2, node: manager1, state: "running"}, {slot: 3, node: manager1, desired: "shutdown", state: "running"}},
			nil, nil, false, 2, "2/2 converged, stopping 1 extra task(s)"},
		{"completed under on-failure", withRestart("on-failure"), []slotTask{{slot: 1, node: worker1, state: "complete"}, {slot: 2, node: worker1, state: "complete"}}, nil, nil, true, 2, "complete on worker-1"},
		{"completed under any is restarted", web, []slotTask{{slot: 1, node: worker1, state: "complete"}, {slot: 2, node: worker1, state: "running"}}, nil, nil, false, 1, "(to be restarted)"},
		{"orphaned is replaced", withRestart("none"), []slotTask{{slot: 1, node: worker2, state: "orphaned"}, {slot: 2, node: worker1, state: "running"}}, nil, nil, false, 1, "orphaned on worker-2 (to be restarted)"},
		{"failed under none", withRestart("none"), []slotTask{{slot: 1, node: worker1, state: "failed", msg: "boom"}, {slot: 2, node: worker1, state: "running"}}, nil, nil, false, 1, "web.1 failed on worker-1: boom and will not be restarted (restart condition none)"},
		{"rejected under on-failure is retried", withRestart("on-failure"), []slotTask{{slot: 1, node: worker1, state: "rejected", msg: "pull failed"}, {slot: 2, node: worker1, state: "running"}}, nil, nil, false, 1, "(to be restarted)"},
		{"old failures are history", web, []slotTask{
			{slot: 1, node: worker1, desired: "shutdown", state: "failed"}, {slot: 1, attempt: 1, node: worker1, desired: "shutdown", state: "failed"},
			{slot: 1, attempt: 2, node: worker1, desired: "shutdown", state: "failed"}, {slot: 1, attempt: 3, node: worker1, state: "running"},
			{slot: 2, node: manager1, state: "running"}}, nil, []string{"taskweb10", "taskweb11", "taskweb12"}, true, 2, "converged"},
		{"new failures add up", web, []slotTask{
			{slot: 1, node: worker1, desired: "shutdown", state: "failed", msg: "exit 2"}, {slot: 1, attempt: 1, node: worker1, desired: "shutdown", state: "rejected"},
			{slot: 1, attempt: 2, node: worker1, desired: "shutdown", state: "failed", msg: "exit 3"}, {slot: 1, attempt: 3, state: "pending"},
			{slot: 2, node: manager1, state: "running"}}, nil, nil, false, 1, "web.1 failed 3 times since shoalctl started waiting (last: exit 3)"},
		{"global on eligible nodes only", global, []slotTask{{node: worker1, state: "running"}, {node: manager1, state: "running"}}, nil, nil, true, 1, "converged (1/1)"},
		{"global waits for its node", global, []slotTask{{node: manager1, state: "running"}}, nil, nil, false, 0, "agent@worker-1: no task yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tasks []*shoalpb.Task
			for _, st := range tt.tasks {
				tasks = append(tasks, scriptedTask(tt.svc, st))
			}
			if tt.edit != nil {
				tt.edit(tasks)
			}
			old := map[string]bool{}
			for _, id := range tt.old {
				old[id] = true
			}
			cl := &cluster{tasks: tasks, nodes: nodes, hosts: hostnamesOf(nodes)}
			v := viewService(tt.svc, cl, old)
			var texts []string
			for _, s := range v.slots {
				texts = append(texts, s.key+": "+s.text)
			}
			all := v.status() + " | " + strings.Join(texts, " | ")
			if v.converged != tt.converged || v.done != tt.done || !strings.Contains(all, tt.want) {
				t.Errorf("converged %v done %d: %s\nwant converged %v done %d and %q", v.converged, v.done, all, tt.converged, tt.done, tt.want)
			}
			if strings.HasPrefix(tt.want, "web.1 failed") && v.failure == "" {
				t.Errorf("no failure set")
			}
		})
	}
}
