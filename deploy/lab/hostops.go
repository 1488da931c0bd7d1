package lab

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Kill ends every process of a host at once (SIGKILL): its daemons, its
// containerd, the shims and the containers, as a power cut would.
func (l *Lab) Kill(name string) ([]int, error) {
	h, err := l.Host(name)
	if err != nil {
		return nil, err
	}
	for _, p := range h.Procs {
		_ = p.Signal(syscall.SIGKILL)
	}
	return killNetns(h.NS), nil
}

// Cut takes a host's link down: it keeps running, cut off from the others.
func (l *Lab) Cut(name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	return setLink(l.BridgeNS, h.Veth, false)
}

// Restore brings a host back: its link up, and the daemons that are not
// running started again from their data dirs.
func (l *Lab) Restore(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	if err := setLink(l.BridgeNS, h.Veth, true); err != nil {
		return err
	}
	switch h.Role {
	case RoleAgent:
		if !h.Procs["containerd"].Alive() || !h.Procs["agent"].Alive() {
			killNetns(h.NS) // a half-dead host restarts whole
			return l.startHost(ctx, h)
		}
	case RoleManager:
		if !h.Procs["manager"].Alive() {
			// Restarted from its data dir it rejoins as the same member.
			return l.start(h, "manager", l.managerArgs(h, "")...)
		}
	case RoleRegistry:
		if !h.Procs["registry"].Alive() {
			return l.startRegistry(ctx, func(string, ...any) {})
		}
	}
	return nil
}

// Status describes each host: address, link and processes.
func (l *Lab) Status() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-9s %-9s %-14s %-5s %s\n", "HOST", "ROLE", "ADDRESS", "LINK", "PROCESSES")
	for _, h := range l.Hosts {
		link := "up"
		out, err := exec.Command("ip", "-n", l.BridgeNS, "-o", "link", "show", h.Veth).Output()
		if err != nil {
			link = "gone"
		} else if !strings.Contains(string(out), "state UP") && !strings.Contains(string(out), ",UP") {
			link = "down"
		}
		var procs []string
		for _, name := range []string{"registry", "manager", "containerd", "agent"} {
			if p, ok := h.Procs[name]; ok {
				state := "dead"
				if p.Alive() {
					state = fmt.Sprint(p.PID)
				}
				procs = append(procs, name+"="+state)
			}
		}
		fmt.Fprintf(&b, "%-9s %-9s %-14s %-5s %s\n", h.Name, h.Role, h.IP, link, strings.Join(procs, " "))
	}
	fmt.Fprintf(&b, "\ncontrol sockets: %s\nimage: %s\nlogs: %s/<host>/*.log\n",
		strings.Join(l.Sockets(), ","), l.Image(), filepath.Clean(l.Cfg.Dir))
	return b.String()
}

// Containers counts the containers an agent host's containerd holds in its
// shoal namespace (running or not).
func (l *Lab) Containers(name string) (int, error) {
	h, err := l.Host(name)
	if err != nil {
		return 0, err
	}
	out, err := exec.Command("ctr", "--address", filepath.Join(h.Dir(l), "containerd", "containerd.sock"),
		"-n", l.ContainerdNamespace(h), "containers", "ls", "-q").Output()
	if err != nil {
		return 0, fmt.Errorf("ctr containers ls on %s: %w", name, err)
	}
	return len(strings.Fields(string(out))), nil
}
