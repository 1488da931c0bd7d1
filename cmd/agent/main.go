// Command shoal-agent runs the agent of one worker host: it joins the
// cluster's gossip, holds a session with the leader's dispatcher and runs
// the tasks assigned to its node.
package main

import (
	"github.com/shoal-sched/shoal/internal/registry"

	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/containerd"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/agent/network"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/metricshttp"
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/membership"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/join"
)

const usageText = `Usage: shoal-agent --token TOKEN --join MANAGER[,MANAGER...] [flags]
       shoal-agent --manager-data-dir DIR --join MANAGER[,MANAGER...] [flags]

Runs the agent of one worker host: it joins the cluster's gossip, holds a
session with the leader and runs the tasks assigned to its node.

Joining:
  On its first start the agent trades the worker join token (shoalctl cluster
  join-token worker) for a certificate: it checks the manager's CA against the
  digest in the token before it sends the token, and the managers choose its
  node ID. The key, certificate and CA are kept in --data-dir (key.pem 0600,
  cert.pem, ca.pem); later starts use them and need no token. The certificate
  renews itself.
  On a manager's host, --manager-data-dir makes the agent present the
  manager's own certificate instead (read from the manager's data dir; no
  --token): the host is one node with the manager's node ID, and its role
  follows the manager's Raft membership. The manager renews that
  certificate; the agent never writes the manager's files, it reloads them.
  Run it as the manager's user (key.pem is 0600).

Stopping (SIGTERM or SIGINT):
  By default the agent restarts in place. It tells the leader it will be back
  within --restart-hold (30s), then exits leaving its containers running and
  without leaving gossip. The node shows as restarting in 'shoalctl node ls',
  keeps its tasks and takes no new ones. Started again within the hold, the
  agent adopts every container (same tasks, same processes) and nothing is
  started twice; if it is not back in time, the node is down and its tasks
  are replaced on other nodes.
  To take a node out for good, drain it first
  (shoalctl node update --availability drain NODE) or stop the agent with
  --leave-on-stop, which leaves the cluster at once: the node is marked down
  and its tasks move elsewhere.
  A host that dies (power, kill -9, a cut link) is noticed by gossip and the
  session, and its tasks are replaced within about a second.

Networks (--networks, on by default with containerd; needs root):
  A task on an overlay network gets a network namespace of its own, with a
  veth into each network's bridge (VXLAN to the other agent hosts, UDP 4789
  from --underlay-addr), egress through the host-local gateway bridge
  (--gateway-subnet, masqueraded), the service VIPs of its networks, and the
  embedded DNS at 127.0.0.11. Namespaces live under DATA_DIR/netns; they are
  removed with their tasks, and all of them with --leave-on-stop.

Flags:
`

// config is what the flags say: the agent's config and how to build its
// runtime.
type config struct {
	agent agent.Config
	token string
	// managerDir is the data dir of the manager on this host, whose
	// certificate the agent presents ("": the agent joins on its own).
	managerDir string
	runtime    string
	ctrd       containerdConfig
	net        netConfig
	// metricsAddr serves Prometheus metrics on /metrics ("": off).
	metricsAddr string
}

// netConfig holds the flags of the data plane.
type netConfig struct {
	enabled       bool
	underlay      string
	gatewaySubnet string
	dnsUpstreams  []string
}

// containerdConfig holds the flags of the containerd runtime.
type containerdConfig struct {
	address          string
	namespace        string
	mirrors          map[string][]string
	insecureRegistry []string
	logDir           string
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shoal-agent:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "shoal-agent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	if err := serveMetrics(ctx, &cfg); err != nil {
		return err
	}
	creds, err := credentials(ctx, cfg)
	if err != nil {
		return err
	}
	cfg.agent.Credentials = creds
	rt, closeRT, err := newRuntime(ctx, cfg)
	if err != nil {
		return err
	}
	cfg.agent.Runtime = rt
	if cfg.net.enabled && cfg.runtime == "containerd" {
		dp, err := newDataPlane(cfg)
		if err != nil {
			return errors.Join(err, closeRT())
		}
		cfg.agent.DataPlane = dp
	}
	a, err := agent.New(cfg.agent)
	if err != nil {
		return errors.Join(err, closeRT())
	}
	return errors.Join(a.Run(ctx), closeRT())
}

// serveMetrics binds --metrics-addr (a bad address fails the start) and
// serves the agent's registry there until ctx ends.
func serveMetrics(ctx context.Context, cfg *config) error {
	if cfg.metricsAddr == "" {
		return nil
	}
	l, err := metricshttp.Listen(cfg.metricsAddr)
	if err != nil {
		return err
	}
	reg := metricshttp.NewRegistry()
	cfg.agent.Metrics = agent.NewMetrics(reg)
	go func() {
		if err := metricshttp.Serve(ctx, l, reg); err != nil {
			cfg.agent.Logger.Error("metrics server stopped", "component", "agent", "err", err)
		}
	}()
	return nil
}

// credentials are the node's: on a manager's host the manager's own (the
// host is one node, and the dispatcher names a session's node by its
// certificate), which the manager renews and the agent reloads; otherwise
// the agent's, traded for the worker join token on its first start.
func credentials(ctx context.Context, cfg config) (*pki.Credentials, error) {
	if cfg.managerDir != "" {
		creds, err := manager.HostCredentials(cfg.managerDir)
		if err != nil {
			return nil, fmt.Errorf("--manager-data-dir: %w", err)
		}
		return creds, nil
	}
	return join.Obtain(ctx, join.Options{
		Dir: cfg.agent.DataDir, Managers: cfg.agent.Join, Token: cfg.token, Role: pki.RoleWorker, Logger: cfg.agent.Logger,
	})
}

// nodeID is the node's ID: its certificate's, else (runtimes built without
// credentials, in tests) the configured one or the data dir's.
func nodeID(cfg config) (string, error) {
	switch {
	case cfg.agent.Credentials != nil:
		return cfg.agent.Credentials.Identity().NodeID, nil
	case cfg.agent.NodeID != "":
		return cfg.agent.NodeID, nil
	}
	return agent.NodeID(cfg.agent.DataDir)
}

// newDataPlane builds the overlay data plane: namespaces under the data
// dir, VXLAN from the underlay address (the advertise address's host
// unless --underlay-addr says otherwise).
func newDataPlane(cfg config) (*network.Reconciler, error) {
	id, err := nodeID(cfg)
	if err != nil {
		return nil, err
	}
	under := cfg.net.underlay
	if under == "" {
		if under, _, err = net.SplitHostPort(cfg.agent.AdvertiseAddr); err != nil {
			return nil, fmt.Errorf("--advertise-addr %q: %w", cfg.agent.AdvertiseAddr, err)
		}
	}
	ip, err := netip.ParseAddr(under)
	if err != nil {
		return nil, fmt.Errorf("underlay address %q (--underlay-addr, or the host of --advertise-addr): want an IPv4 address", under)
	}
	gw, err := netip.ParsePrefix(cfg.net.gatewaySubnet)
	if err != nil {
		return nil, fmt.Errorf("--gateway-subnet %q: want a CIDR such as 172.31.0.0/16", cfg.net.gatewaySubnet)
	}
	dp, err := network.New(network.Config{
		Dir: filepath.Join(cfg.agent.DataDir, "netns"), NodeID: id, UnderlayIP: ip,
		GatewaySubnet: gw, Resolvers: cfg.net.dnsUpstreams, Logger: cfg.agent.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("data plane (run as root, or --networks=false for host networking only): %w", err)
	}
	return dp, nil
}

// newRuntime builds the runtime the flags name, and what closes it.
func newRuntime(ctx context.Context, cfg config) (agent.Runtime, func() error, error) {
	switch cfg.runtime {
	case "fake":
		// Starts nothing: for simulations and tests of the control plane.
		return fake.New(), func() error { return nil }, nil
	case "containerd":
		id, err := nodeID(cfg)
		if err != nil {
			return nil, nil, err
		}
		rt, err := containerd.New(ctx, containerd.Options{
			Address: cfg.ctrd.address, Namespace: cfg.ctrd.namespace, NodeID: id,
			NodeHostname: cfg.agent.Hostname,
			StateDir:     filepath.Join(cfg.agent.DataDir, "runtime"), LogDir: cfg.ctrd.logDir,
			Mirrors: cfg.ctrd.mirrors, InsecureRegistries: cfg.ctrd.insecureRegistry,
			Logger: cfg.agent.Logger,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("--runtime containerd: %w", err)
		}
		return rt, rt.Close, nil
	}
	return nil, nil, fmt.Errorf("--runtime %q: want containerd or fake", cfg.runtime)
}

// listFlag collects a repeatable flag that also takes comma lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// labelFlag collects repeatable K=V labels.
type labelFlag map[string]string

func (l labelFlag) String() string {
	var out []string
	for k, v := range l {
		out = append(out, k+"="+v)
	}
	return strings.Join(out, ",")
}

func (l labelFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("label %q: want KEY=VALUE", v)
	}
	l[strings.TrimSpace(k)] = val
	return nil
}

func parseFlags(args []string) (config, error) {
	var cfg config
	a := &cfg.agent
	var joinAddrs, mirrors, insecure listFlag
	labels := labelFlag{}
	fs := flag.NewFlagSet("shoal-agent", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&a.DataDir, "data-dir", "/var/lib/shoal/agent", "directory for the node's key and certificate and the assignment set")
	fs.Var(&joinAddrs, "join", "gRPC address HOST:PORT of a manager (repeatable, or a comma list)")
	fs.StringVar(&cfg.token, "token", "", "worker join token, from shoalctl cluster join-token worker (first start only)")
	fs.StringVar(&a.AdvertiseAddr, "advertise-addr", "127.0.0.1:4244", "address HOST:PORT of this agent's service (task logs), as managers reach it")
	fs.StringVar(&a.GossipAddr, "gossip-addr", "", "gossip (memberlist) bind address HOST:PORT; empty disables gossip")
	fs.StringVar(&cfg.metricsAddr, "metrics-addr", "", "serve Prometheus metrics as text on http://ADDR/metrics (e.g. 127.0.0.1:9465); empty: off")
	gossipKey := fs.String("gossip-key", "", "gossip key to gossip with before the first session (base64 of 16, 24 or 32 bytes; the --gossip-key the managers bootstrapped with); without it the agent gossips once the leader sent it the cluster's keys")
	fs.StringVar(&cfg.managerDir, "manager-data-dir", "",
		"data dir of the shoal-manager on this host: the agent presents the manager's certificate (no --token), so the host is one node, with the manager's id, whose role (manager or worker) follows the manager's Raft membership; the manager renews the certificate and the agent reloads it; gossip is then the manager's (no --gossip-addr)")
	fs.StringVar(&a.Hostname, "hostname", "", "node name shown to operators (default: the host name)")
	fs.StringVar(&cfg.runtime, "runtime", "containerd", "container runtime: containerd, or fake (starts nothing)")
	fs.StringVar(&cfg.ctrd.address, "containerd-address", "/run/containerd/containerd.sock", "containerd socket")
	fs.StringVar(&cfg.ctrd.namespace, "containerd-namespace", containerd.DefaultNamespace, "containerd namespace of this agent (one per agent)")
	fs.Var(&mirrors, "registry-mirror", "registry mirror: HOST[:PORT] of a Docker Hub mirror, or REGISTRY=MIRROR (repeatable)")
	fs.Var(&insecure, "insecure-registry", "registry HOST[:PORT] reached over plain HTTP (repeatable)")
	fs.StringVar(&cfg.ctrd.logDir, "log-dir", "", "directory for container logs (default DATA_DIR/runtime/logs)")
	cpus := fs.String("cpus", "", "CPUs offered to tasks, e.g. 2 or 1.5 (default: all)")
	memory := fs.String("memory", "", "memory offered to tasks, e.g. 4GiB or 512MiB (default: all)")
	fs.Var(labels, "label", "node label KEY=VALUE (repeatable)")
	fs.BoolVar(&a.LeaveOnStop, "leave-on-stop", false, "on SIGTERM leave the cluster for good: the node is marked down at once and its tasks are placed elsewhere")
	fs.DurationVar(&a.RestartHold, "restart-hold", agent.DefaultRestartHold,
		"on SIGTERM (without --leave-on-stop) ask the leader to hold this node's tasks this long while the agent restarts; 0: ask nothing (the node is treated as lost)")
	fs.DurationVar(&a.Gossip.ProbeInterval, "gossip-probe-interval", 0, "memberlist probe interval (0: LAN default)")
	fs.DurationVar(&a.Gossip.ProbeTimeout, "gossip-probe-timeout", 0, "memberlist probe timeout (0: LAN default)")
	fs.IntVar(&a.Gossip.SuspicionMult, "gossip-suspicion-mult", 0, "memberlist suspicion multiplier (0: LAN default)")
	fs.DurationVar(&a.Gossip.GossipInterval, "gossip-interval", 0, "memberlist gossip interval (0: LAN default)")
	fs.BoolVar(&cfg.net.enabled, "networks", true, "run the overlay data plane (containerd runtime): tasks on networks get their own namespace, VIPs, DNS and published ports")
	fs.StringVar(&cfg.net.underlay, "underlay-addr", "", "this host's IPv4 address for VXLAN tunnels (default: the host of --advertise-addr)")
	fs.StringVar(&cfg.net.gatewaySubnet, "gateway-subnet", network.DefaultGatewaySubnet.String(), "host-local subnet of the gateway bridge that gives containers egress")
	var upstreams listFlag
	fs.Var(&upstreams, "dns-upstream", "resolver HOST:PORT for names the embedded DNS does not own (repeatable; default: /etc/resolv.conf's)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q: shoal-agent takes flags only", fs.Arg(0))
	}
	if len(joinAddrs) == 0 {
		return cfg, errors.New("--join: give at least one manager address HOST:PORT")
	}
	if a.RestartHold < 0 || a.RestartHold > api.MaxRestartHold {
		return cfg, fmt.Errorf("--restart-hold %s: want 0 (no hold) or a duration up to %s; drain the node for longer maintenance",
			a.RestartHold, api.MaxRestartHold)
	}
	a.Join, a.Labels = joinAddrs, labels
	cfg.net.dnsUpstreams = upstreams
	if cfg.managerDir != "" {
		if err := checkManagerHost(cfg); err != nil {
			return cfg, err
		}
		// The manager renews the certificate; the agent reloads it.
		a.SharedCredentialsDir = cfg.managerDir
	}
	cfg.ctrd.insecureRegistry = insecure
	m, err := registry.ParseMirrors(mirrors)
	if err != nil {
		return cfg, err
	}
	cfg.ctrd.mirrors = m
	if err := parseResources(a, *cpus, *memory); err != nil {
		return cfg, err
	}
	if *gossipKey != "" {
		key, err := membership.ParseGossipKey(*gossipKey)
		if err != nil {
			return cfg, fmt.Errorf("--gossip-key: %w", err)
		}
		a.GossipKey = key
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return cfg, fmt.Errorf("--log-level %q: want debug, info, warn or error", *level)
	}
	a.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	return cfg, nil
}

// checkManagerHost refuses flags that contradict --manager-data-dir.
func checkManagerHost(cfg config) error {
	switch {
	case cfg.agent.GossipAddr != "":
		return fmt.Errorf("--gossip-addr %q with --manager-data-dir: the manager gossips for its host; drop --gossip-addr", cfg.agent.GossipAddr)
	case cfg.token != "":
		return errors.New("--token with --manager-data-dir: the agent presents the manager's certificate and joins with no token; drop --token")
	case filepath.Clean(cfg.managerDir) == filepath.Clean(cfg.agent.DataDir):
		return fmt.Errorf("--data-dir %q is the --manager-data-dir: give the agent a data dir of its own", cfg.agent.DataDir)
	}
	return nil
}

// parseResources reads --cpus and --memory; empty ones are detected.
func parseResources(a *agent.Config, cpus, memory string) error {
	if cpus != "" {
		n, err := api.ParseCPUs(cpus)
		if err != nil {
			return fmt.Errorf("--cpus: %w", err)
		}
		if n <= 0 {
			return fmt.Errorf("--cpus %q: must be more than 0", cpus)
		}
		a.Resources.NanoCPUs = n
	}
	if memory != "" {
		n, err := api.ParseMemory(memory)
		if err != nil {
			return fmt.Errorf("--memory: %w", err)
		}
		if n <= 0 {
			return fmt.Errorf("--memory %q: must be more than 0", memory)
		}
		a.Resources.MemoryBytes = n
	}
	return nil
}
