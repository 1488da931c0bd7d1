package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// Up makes the lab: namespaces and links, the registry, the managers (the
// first bootstraps, the others join it), and on each agent host its own
// containerd and an agent. It returns when every agent's node is ready. A
// lab that is already up is an error; a half-made one is cleaned first.
func Up(ctx context.Context, cfg Config, logf func(string, ...any)) (*Lab, error) {
	l := Plan(cfg)
	if old, err := Load(l.Cfg.Dir); err == nil {
		if netnsExists(old.BridgeNS) {
			return nil, fmt.Errorf("the lab is already up (%s); run 'make lab-down' first", l.Cfg.Dir)
		}
	}
	if err := Down(l.Cfg, func(string, ...any) {}); err != nil {
		return nil, fmt.Errorf("clean a previous lab: %w", err)
	}
	for _, bin := range []string{"shoal-manager", "shoal-agent", "shoalctl", "shoal-lab-registry"} {
		if _, err := os.Stat(filepath.Join(l.Cfg.BinDir, bin)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: run 'make build' first", bin, l.Cfg.BinDir)
		}
	}
	if err := os.MkdirAll(l.Cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := l.save(); err != nil {
		return nil, err
	}
	logf("network: bridge namespace %s, hosts on %s.0/24", l.BridgeNS, l.Cfg.Subnet)
	if err := makeBridge(l.BridgeNS); err != nil {
		return l, err
	}
	for _, h := range l.Hosts {
		if err := os.MkdirAll(h.Dir(l), 0o755); err != nil {
			return l, err
		}
		if err := makeHostNetns(h.NS, l.BridgeNS, h.Veth, h.IP+"/24"); err != nil {
			return l, err
		}
	}
	if err := l.save(); err != nil {
		return l, err
	}
	for _, step := range []func(context.Context, func(string, ...any)) error{
		l.startRegistry, l.startManagers, l.startAgents,
	} {
		if err := step(ctx, logf); err != nil {
			return l, err
		}
	}
	return l, nil
}

func (l *Lab) bin(name string) string {
	p, err := filepath.Abs(filepath.Join(l.Cfg.BinDir, name))
	if err != nil {
		return filepath.Join(l.Cfg.BinDir, name)
	}
	return p
}

func (l *Lab) start(h *Host, name string, args ...string) error {
	p, err := startInNetns(h.NS, filepath.Join(h.Dir(l), name+".log"), args...)
	if err != nil {
		return err
	}
	h.Procs[name] = p
	return l.save()
}

func (l *Lab) startRegistry(ctx context.Context, logf func(string, ...any)) error {
	for _, h := range l.ByRole(RoleRegistry) {
		logf("%-8s registry serving busybox at %s", h.Name, l.Image())
		// The alias and the agents' --registry-mirror let compose files
		// that say "image: busybox" deploy unchanged.
		if err := l.start(h, "registry", l.bin("shoal-lab-registry"), "--addr", fmt.Sprintf("%s:%d", h.IP, RegistryPort),
			"--alias", HubBusybox); err != nil {
			return err
		}
	}
	return nil
}

// HubBusybox is the Docker Hub repository the lab's registry also serves
// its busybox as: the registry is the agents' Docker Hub mirror.
const HubBusybox = "library/busybox:latest"

// registryArgs are the registry flags of managers and agents alike: the
// lab registry, over plain HTTP, is also the Docker Hub mirror, so the
// managers resolve image digests where the agents pull (never the
// internet).
func (l *Lab) registryArgs() []string {
	return []string{
		"--insecure-registry", l.RegistryAddr(),
		"--registry-mirror", "http://" + l.RegistryAddr(),
	}
}

func (l *Lab) managerArgs(h *Host, join string) []string {
	args := []string{
		l.bin("shoal-manager"),
		"--data-dir", filepath.Join(h.Dir(l), "data"),
		"--socket", filepath.Join(h.Dir(l), "control.sock"),
		"--addr", fmt.Sprintf("%s:%d", h.IP, ManagerPort),
		"--raft-addr", fmt.Sprintf("%s:%d", h.IP, RaftPort),
		"--gossip-addr", fmt.Sprintf("%s:%d", h.IP, GossipPort),
		"--ui-addr", fmt.Sprintf("127.0.0.1:%d", UIPort),
	}
	args = append(args, l.registryArgs()...)
	if join != "" {
		args = append(args, "--join", join)
	}
	return args
}

func (l *Lab) startManagers(ctx context.Context, logf func(string, ...any)) error {
	managers := l.ByRole(RoleManager)
	first := fmt.Sprintf("%s:%d", managers[0].IP, ManagerPort)
	for i, h := range managers {
		join := first
		if i == 0 {
			join = ""
		}
		logf("%-8s shoal-manager at %s:%d (raft %d, gossip %d)", h.Name, h.IP, ManagerPort, RaftPort, GossipPort)
		args := l.managerArgs(h, join)
		if join != "" {
			tok, err := l.tokenIfNew(ctx, filepath.Join(h.Dir(l), "data"), pki.RoleManager)
			if err != nil {
				return err
			}
			args = append(args, tok...)
		}
		if err := l.start(h, "manager", args...); err != nil {
			return err
		}
		// Each manager joins only once the previous one is a voter, so
		// the cluster never waits on a quorum that is still starting.
		if err := l.waitManagers(ctx, i+1, 30*time.Second); err != nil {
			return fmt.Errorf("%s: %w (log: %s)", h.Name, err, h.Procs["manager"].Log)
		}
	}
	return nil
}

// containerdConfig is a private containerd per agent host: its own root,
// state and sockets, and no CRI plugin.
func containerdConfig(dir string) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = ""
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"),
		filepath.Join(dir, "containerd.sock"), filepath.Join(dir, "containerd.sock.ttrpc"))
}

// ContainerdNamespace is the containerd namespace of an agent host.
func (l *Lab) ContainerdNamespace(h *Host) string { return l.Cfg.Prefix + h.Name }

func (l *Lab) startContainerd(h *Host) error {
	dir := filepath.Join(h.Dir(l), "containerd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(conf, []byte(containerdConfig(dir)), 0o644); err != nil {
		return err
	}
	return l.start(h, "containerd", "containerd", "--config", conf)
}

func (l *Lab) agentArgs(h *Host) []string {
	var joins []string
	for _, m := range l.ByRole(RoleManager) {
		joins = append(joins, fmt.Sprintf("%s:%d", m.IP, ManagerPort))
	}
	if h.Role == RoleManager {
		return l.managerAgentArgs(h, joins)
	}
	args := []string{
		l.bin("shoal-agent"),
		"--data-dir", filepath.Join(h.Dir(l), "agent"),
		"--hostname", h.Name,
		"--join", strings.Join(joins, ","),
		"--advertise-addr", fmt.Sprintf("%s:%d", h.IP, AgentPort),
		"--gossip-addr", fmt.Sprintf("%s:%d", h.IP, GossipPort),
		"--runtime", "containerd",
		"--containerd-address", filepath.Join(h.Dir(l), "containerd", "containerd.sock"),
		"--containerd-namespace", l.ContainerdNamespace(h),
		"--log-dir", filepath.Join(h.Dir(l), "logs"),
	}
	return append(args, l.registryArgs()...)
}

// startHost starts an agent host's containerd and agent.
func (l *Lab) startHost(ctx context.Context, h *Host) error {
	if err := l.startContainerd(h); err != nil {
		return err
	}
	sock := filepath.Join(h.Dir(l), "containerd", "containerd.sock")
	// The socket file of a killed daemon may still be there: wait until
	// the new one accepts connections.
	if err := waitFor(ctx, 20*time.Second, func() error {
		conn, err := net.DialTimeout("unix", sock, time.Second)
		if err != nil {
			return fmt.Errorf("containerd does not answer on %s yet: %w", sock, err)
		}
		return conn.Close()
	}); err != nil {
		return fmt.Errorf("%s: %w (log: %s)", h.Name, err, h.Procs["containerd"].Log)
	}
	if h.Role == RoleManager {
		// The agent presents the manager's certificate: no token.
		return l.start(h, "agent", l.agentArgs(h)...)
	}
	tok, err := l.tokenIfNew(ctx, filepath.Join(h.Dir(l), "agent"), pki.RoleWorker)
	if err != nil {
		return err
	}
	return l.start(h, "agent", append(l.agentArgs(h), tok...)...)
}

// tokenIfNew returns the --token arguments a node whose data dir is dir
// needs to join as role: none when it holds a certificate already (a
// restart), else the current join token, read from the managers.
func (l *Lab) tokenIfNew(ctx context.Context, dir, role string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(dir, pki.CertFile)); err == nil {
		return nil, nil
	}
	c, err := l.dial()
	if err != nil {
		return nil, err
	}
	defer c.close()
	var tok string
	err = waitFor(ctx, 30*time.Second, func() error {
		return c.each(ctx, func(ctx context.Context, ctl shoalpb.ControlClient) error {
			t, err := ctl.GetJoinTokens(ctx, &shoalpb.GetJoinTokensRequest{})
			if err != nil {
				return err
			}
			tok = t.GetWorker()
			if role == pki.RoleManager {
				tok = t.GetManager()
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("join token for a %s: %w", role, err)
	}
	return []string{"--token", tok}, nil
}

func (l *Lab) startAgents(ctx context.Context, logf func(string, ...any)) error {
	hosts := l.TaskHosts()
	for _, h := range hosts {
		logf("%-8s containerd (namespace %s) + shoal-agent at %s", h.Name, l.ContainerdNamespace(h), h.IP)
		if err := l.startHost(ctx, h); err != nil {
			return err
		}
	}
	return l.waitNodesReady(ctx, len(hosts), 30*time.Second)
}

// errStopWaiting, wrapped in a check's error, ends waitFor at once: the
// condition can no longer come true.
var errStopWaiting = errors.New("stopped waiting")

// waitFor polls check until it returns nil, ctx ends or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || errors.Is(err, errStopWaiting) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
