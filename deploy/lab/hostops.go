package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
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
	// The containers of tasks on networks live in namespaces of their own.
	return append(killNetns(h.NS), killDataPlane(h.Dir(l))...), nil
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
			if err := l.start(h, "manager", l.managerArgs(h, "")...); err != nil {
				return err
			}
		}
		if l.Cfg.ManagersRunTasks && (!h.Procs["containerd"].Alive() || !h.Procs["agent"].Alive()) {
			return l.restartTaskRunner(ctx, h)
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

// KillProcess sends SIGKILL to one daemon of a host (its "manager", "agent",
// "containerd" or "registry") and waits until it is gone; the rest of the
// host keeps running.
func (l *Lab) KillProcess(ctx context.Context, name, daemon string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	p, ok := h.Procs[daemon]
	if !ok {
		return fmt.Errorf("%s runs no %s", name, daemon)
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	return waitFor(ctx, 10*time.Second, func() error {
		if p.Alive() {
			return fmt.Errorf("%s on %s (pid %d) still runs after SIGKILL", daemon, name, p.PID)
		}
		return nil
	})
}

// agentStopTimeout bounds a planned agent stop: SIGTERM until it exits.
const agentStopTimeout = 15 * time.Second

// StopAgent stops an agent host's agent as an operator or systemd would,
// with SIGTERM, and waits until it has exited; containerd and the
// containers keep running. An agent that does not exit in time is killed
// and reported.
func (l *Lab) StopAgent(ctx context.Context, name string) error {
	h, err := l.agentHost(name)
	if err != nil {
		return err
	}
	p := h.Procs["agent"]
	if !p.Alive() {
		return fmt.Errorf("the agent on %s is not running", name)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	err = waitFor(ctx, agentStopTimeout, func() error {
		if p.Alive() {
			return fmt.Errorf("the agent on %s (pid %d) still runs after SIGTERM", name, p.PID)
		}
		return nil
	})
	if err != nil {
		_ = p.Signal(syscall.SIGKILL)
		return fmt.Errorf("%w; killed it (log: %s)", err, p.Log)
	}
	return nil
}

// agentStartTimeout bounds the wait for a started agent's first session.
const agentStartTimeout = 30 * time.Second

// StartAgent starts an agent host's agent again, with the lab's agent flags
// followed by extra (e.g. "--restart-hold", "3s"), and waits until it holds
// a session with a manager. An agent that exits meanwhile is an error that
// quotes the end of its log.
func (l *Lab) StartAgent(ctx context.Context, name string, extra ...string) error {
	h, err := l.agentHost(name)
	if err != nil {
		return err
	}
	if h.Procs["agent"].Alive() {
		return fmt.Errorf("the agent on %s is already running (pid %d)", name, h.Procs["agent"].PID)
	}
	if !h.Procs["containerd"].Alive() {
		return fmt.Errorf("containerd on %s is not running: use restore to start the host whole", name)
	}
	mark, err := l.LogMark(name)
	if err != nil {
		return err
	}
	if err := l.start(h, "agent", append(l.agentArgs(h), extra...)...); err != nil {
		return err
	}
	p := h.Procs["agent"]
	return waitFor(ctx, agentStartTimeout, func() error {
		if !p.Alive() {
			return fmt.Errorf("%w: the agent on %s exited: %s", errStopWaiting, name, logTail(p.Log, mark))
		}
		if _, ok, err := l.AgentSession(name, mark); err != nil || !ok {
			return fmt.Errorf("the agent on %s holds no session yet (log: %s)", name, p.Log)
		}
		return nil
	})
}

// RestartAgent is StopAgent, a pause of after, and StartAgent: a planned
// restart, as `systemctl restart shoal-agent` (after 0) or an upgrade does.
func (l *Lab) RestartAgent(ctx context.Context, name string, after time.Duration, extra ...string) error {
	if err := l.StopAgent(ctx, name); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(after):
	}
	return l.StartAgent(ctx, name, extra...)
}

func (l *Lab) agentHost(name string) (*Host, error) {
	h, err := l.Host(name)
	if err != nil {
		return nil, err
	}
	if h.Role != RoleAgent {
		return nil, fmt.Errorf("%s is a %s host, not an agent host", name, h.Role)
	}
	return h, nil
}

// logTail returns the last lines of a log written after offset from.
func logTail(path string, from int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if from > 0 && from <= int64(len(b)) {
		b = b[from:]
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}
