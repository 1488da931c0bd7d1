package scheduler

import (
	"fmt"
	"strings"

	"github.com/shoal-sched/shoal/api"
)

// hostPorts lists the ports a task of spec binds on its node: the
// host-mode ports with a number (a port published through the mesh binds
// on every node alike, and a host-mode port without a number is chosen by
// the node itself, so neither limits placement).
func hostPorts(spec *api.ServiceSpec) []string {
	if spec == nil {
		return nil
	}
	var out []string
	for _, p := range spec.Endpoint.Ports {
		if p.Mode() == api.PublishModeHost && p.PublishedPort != 0 {
			out = append(out, fmt.Sprintf("%d/%s", p.PublishedPort, p.PortProtocol()))
		}
	}
	return out
}

func (n *nodeState) holdPorts(ports []string) {
	if len(ports) == 0 {
		return
	}
	if n.hostPorts == nil {
		n.hostPorts = make(map[string]bool, len(ports))
	}
	for _, p := range ports {
		n.hostPorts[p] = true
	}
}

func (n *nodeState) holdsAny(ports []string) bool {
	for _, p := range ports {
		if n.hostPorts[p] {
			return true
		}
	}
	return false
}

func hostPortText(ports []string) string {
	if len(ports) == 1 {
		return "host port " + ports[0] + " in use"
	}
	return "host ports " + strings.Join(ports, ", ") + " (one or more) in use"
}
