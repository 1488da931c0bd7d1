// Command shoal-manager runs one shoal manager: a Raft member that keeps the
// cluster's desired state and serves the control API and the dispatcher.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoal-sched/shoal/internal/registry"
	"github.com/shoal-sched/shoal/manager"
)

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "shoal-manager:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "shoal-manager:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg manager.Config) error {
	m, err := manager.Open(ctx, cfg)
	if err != nil {
		return err
	}
	return m.Run(ctx)
}

func parseFlags(args []string) (manager.Config, error) {
	var cfg manager.Config
	fs := flag.NewFlagSet("shoal-manager", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", "/var/lib/shoal/manager", "directory for the Raft log, snapshots and the manager's certificate and key")
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:4242", "gRPC address (control API, dispatcher) that clients, agents and managers reach")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", "127.0.0.1:4243", "Raft TCP address")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "gRPC address others dial, when a proxy or NAT stands in front of --addr (default: --addr)")
	fs.StringVar(&cfg.RaftAdvertiseAddr, "raft-advertise-addr", "", "Raft address other managers dial, when a proxy or NAT stands in front of --raft-addr (default: --raft-addr)")
	fs.StringVar(&cfg.Join, "join", "", "gRPC address of a manager of the cluster to join (first start only; needs --token)")
	fs.StringVar(&cfg.Token, "token", "", "manager join token, from shoalctl cluster join-token manager (first start with --join only)")
	fs.StringVar(&cfg.Socket, "socket", "", "control API unix socket (default DATA_DIR/control.sock; - disables it)")
	fs.BoolVar(&cfg.Standby, "standby", false,
		"join as a standby manager (a Raft non-voter that follows the log): its host's node is a worker until 'shoalctl node promote' (first start only, with --join)")
	fs.BoolVar(&cfg.ForceNewCluster, "force-new-cluster", false, "restart this lone survivor as a one-member cluster keeping all state")
	fs.StringVar(&cfg.GossipAddr, "gossip-addr", "", "gossip (memberlist) bind address; empty disables gossip")
	fs.StringVar(&cfg.GossipKey, "gossip-key", "", "first gossip key of a new cluster: base64 of 16, 24 or 32 bytes (default: a random 32-byte key; the managers keep the keys in Raft, hand them to agents and rotate them, so this only matters at bootstrap)")
	fs.BoolVar(&cfg.Autolock, "autolock", false, "wrap the managers' data keys with an unlock key (logged once; shoalctl cluster unlock-key shows it): a restarted manager serves nothing until shoalctl cluster unlock")
	fs.DurationVar(&cfg.Raft.HeartbeatTimeout, "raft-heartbeat-timeout", 0, "Raft heartbeat timeout (0: LAN default)")
	fs.DurationVar(&cfg.Raft.ElectionTimeout, "raft-election-timeout", 0, "Raft election timeout (0: LAN default)")
	fs.DurationVar(&cfg.Raft.LeaderLeaseTimeout, "raft-leader-lease-timeout", 0, "Raft leader lease timeout (0: LAN default)")
	fs.DurationVar(&cfg.Raft.CommitTimeout, "raft-commit-timeout", 0, "Raft commit timeout (0: default)")
	fs.DurationVar(&cfg.Raft.ApplyTimeout, "raft-apply-timeout", 0, "how long a write waits for a leader inside Raft (0: default)")
	fs.Uint64Var(&cfg.Raft.SnapshotThreshold, "raft-snapshot-threshold", 0, "log entries between snapshots (0: default)")
	fs.DurationVar(&cfg.Raft.SnapshotInterval, "raft-snapshot-interval", 0, "how often to check whether to snapshot (0: default)")
	fs.DurationVar(&cfg.LeaderTimeout, "leader-timeout", 0, "how long a request waits for a leader before failing (0: 7s)")
	fs.DurationVar(&cfg.NodeGracePeriod, "node-grace-period", 0, "how long a node may be without an agent session before it is declared down (0: 500ms)")
	fs.DurationVar(&cfg.NodeReconnectWindow, "node-reconnect-window", 0,
		"after a leader change, how long ready nodes have to open a session with the new leader before they may be declared down; nodes gossip already saw die get the grace period only (0: 4s)")
	fs.DurationVar(&cfg.Gossip.ProbeInterval, "gossip-probe-interval", 0, "memberlist probe interval (0: LAN default)")
	fs.DurationVar(&cfg.Gossip.ProbeTimeout, "gossip-probe-timeout", 0, "memberlist probe timeout (0: LAN default)")
	fs.IntVar(&cfg.Gossip.SuspicionMult, "gossip-suspicion-mult", 0, "memberlist suspicion multiplier (0: LAN default)")
	fs.DurationVar(&cfg.Gossip.GossipInterval, "gossip-interval", 0, "memberlist gossip interval (0: LAN default)")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", "", "serve Go's runtime profiles (/debug/pprof/) on this address, for diagnosis; keep it on loopback")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics as text on http://ADDR/metrics (e.g. 127.0.0.1:9464); empty: off")
	fs.StringVar(&cfg.UIAddr, "ui-addr", "", "serve the web UI (read-only) and its JSON gateway on this address; plain HTTP is unauthenticated: bind it to loopback, or add --ui-tls")
	fs.BoolVar(&cfg.UITLS, "ui-tls", false, "serve the web UI over HTTPS with the manager's certificate; a browser certificate of the cluster's CA names the caller")
	resolve := fs.Bool("resolve-images", true, "resolve each service's image tag to a digest on create and update, so every task runs the same image")
	var mirrors, insecure listFlag
	fs.Var(&mirrors, "registry-mirror", "registry mirror, as the agents': HOST[:PORT] of a Docker Hub mirror, or REGISTRY=MIRROR (repeatable)")
	fs.Var(&insecure, "insecure-registry", "registry HOST[:PORT] reached over plain HTTP, as the agents' (repeatable)")
	registryConfig := fs.String("registry-config", "", "docker-style config.json with registry credentials (auths), for resolving image digests")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q: shoal-manager takes flags only", fs.Arg(0))
	}
	if *resolve {
		m, err := registry.ParseMirrors(mirrors)
		if err != nil {
			return cfg, err
		}
		cfg.Images = &registry.Options{Mirrors: m, Insecure: insecure, DockerConfig: *registryConfig}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return cfg, fmt.Errorf("--log-level %q: want debug, info, warn or error", *level)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	return cfg, nil
}
