package scheduler

import (
	"testing"

	"github.com/shoal-sched/shoal/api"
)

func hostPort(port uint16, proto string) func(*api.Task) {
	return func(t *api.Task) {
		t.Spec.Endpoint.Ports = append(t.Spec.Endpoint.Ports, api.PortConfig{TargetPort: 80, PublishedPort: port, Protocol: proto, PublishMode: api.PublishModeHost})
	}
}

func TestFilterHostPorts(t *testing.T) {
	runCases(t, []scheduleCase{
		{
			name:  "one task per node per host port",
			nodes: infos(mkNode("n1", 8*cpu, 8*gib), mkNode("n2", 8*cpu, 8*gib)),
			tasks: tasks("web", 3, 0, 0, hostPort(8080, "")),
			want: map[string]string{
				"web-1": "n1", "web-2": "n2",
				"web-3": "!no suitable node (host port 8080/tcp in use on 2 nodes)",
			},
		},
		{
			name: "a port held by another service's task on the node, and other protocols do not meet",
			nodes: []NodeInfo{
				{Node: mkNode("n1", 8*cpu, 8*gib), Tasks: []*api.Task{running("r1", "db", 0, 0, hostPort(8080, "tcp"))}},
				{Node: mkNode("n2", 8*cpu, 8*gib)},
			},
			tasks: append(tasks("web", 1, 0, 0, hostPort(8080, "tcp")), tasks("dns", 2, 0, 0, hostPort(8080, "udp"))...),
			want:  map[string]string{"web-1": "n2", "dns-1": "n2", "dns-2": "n1"},
		},
		{
			name: "a stopped task frees its port",
			nodes: []NodeInfo{
				{Node: mkNode("n1", 8*cpu, 8*gib), Tasks: []*api.Task{running("r1", "web", 0, 0, hostPort(8080, ""), inState(api.TaskFailed))}},
			},
			tasks: tasks("web", 1, 0, 0, hostPort(8080, "")),
			want:  map[string]string{"web-1": "n1"},
		},
		{
			name: "a global task names the node that holds the port",
			nodes: []NodeInfo{
				{Node: mkNode("n1", 8*cpu, 8*gib), Tasks: []*api.Task{running("r1", "db", 0, 0, hostPort(8080, ""))}},
			},
			tasks: tasks("agent", 1, 0, 0, hostPort(8080, ""), onNode("n1")),
			want:  map[string]string{"agent-1": "!node n1 not suitable (host port 8080/tcp in use)"},
		},
		{
			name:  "ingress ports do not limit placement",
			nodes: infos(mkNode("n1", 8*cpu, 8*gib)),
			tasks: tasks("web", 2, 0, 0, func(t *api.Task) { t.Spec.Endpoint.Ports = []api.PortConfig{{TargetPort: 80, PublishedPort: 8080}} }),
			want:  map[string]string{"web-1": "n1", "web-2": "n1"},
		},
	})
}
