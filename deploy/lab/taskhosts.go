package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
)

// TaskHosts are the hosts that run tasks: the agent hosts, and the manager
// hosts too with ManagersRunTasks. Each has its own containerd.
func (l *Lab) TaskHosts() []*Host {
	hosts := l.ByRole(RoleAgent)
	if l.Cfg.ManagersRunTasks {
		hosts = append(l.ByRole(RoleManager), hosts...)
	}
	return hosts
}

// managerAgentArgs are the flags of the agent on a manager host: it
// presents the manager's certificate, so it takes the manager's id (one
// node per host, whose role follows the manager's Raft membership), joins
// with no token, and leaves gossip to the manager.
func (l *Lab) managerAgentArgs(h *Host, joins []string) []string {
	return []string{
		l.bin("shoal-agent"),
		"--data-dir", filepath.Join(h.Dir(l), "agent"),
		"--manager-data-dir", filepath.Join(h.Dir(l), "data"),
		"--hostname", h.Name,
		"--join", strings.Join(joins, ","),
		"--advertise-addr", fmt.Sprintf("%s:%d", h.IP, AgentPort),
		"--runtime", "containerd",
		"--containerd-address", filepath.Join(h.Dir(l), "containerd", "containerd.sock"),
		"--containerd-namespace", l.ContainerdNamespace(h),
		"--insecure-registry", l.RegistryAddr(),
		"--registry-mirror", "http://" + l.RegistryAddr(),
		"--log-dir", filepath.Join(h.Dir(l), "logs"),
	}
}

// restartTaskRunner starts a manager host's containerd and agent again
// (the manager keeps running).
func (l *Lab) restartTaskRunner(ctx context.Context, h *Host) error {
	for _, name := range []string{"agent", "containerd"} {
		if p := h.Procs[name]; p.Alive() {
			_ = p.Signal(syscall.SIGKILL)
		}
	}
	return l.startHost(ctx, h)
}
