// Command shoal-lab runs a local multi-host shoal lab on network namespaces.
//
//	shoal-lab up | down | status
//	shoal-lab ctl ARGS…          shoalctl against the lab's managers
//	shoal-lab sh HOST [CMD…]     a shell (or a command) on a lab host
//	shoal-lab kill HOST [DAEMON] | cut HOST | restore HOST
//	shoal-lab stop-agent|start-agent|restart-agent HOST …
//	shoal-lab demo               the failover demo (make demo)
//	shoal-lab bench-failover [--runs N] [--cut | --leader-cut | --leader-kill]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/shoal-sched/shoal/deploy/lab"
)

const usage = `usage: shoal-lab [--dir DIR] [--bin DIR] [--prefix P] COMMAND
commands:
  up [--managers-run-tasks]
                          start 3 managers, 3 agent hosts (own containerd each) and a registry;
                          with --managers-run-tasks the manager hosts run tasks too (own
                          containerd, an agent with the manager's identity: nodes of role manager)
  down                    stop the lab and remove everything it made
  status                  hosts, links and processes
  ctl ARGS...             run shoalctl against the lab's managers (unix sockets)
  sh HOST [CMD...]        a shell, or a command, inside a lab host (m1, a2, registry, ...)
  ui [--listen ADDR] [HOST]
                          forward a manager's web UI (default m1) to ADDR on this machine's
                          loopback (default 127.0.0.1:8080) until ctrl-c
  kill HOST [DAEMON]      SIGKILL every process of a host (daemons, containerd, shims, containers),
                          or only its DAEMON (manager, agent, containerd, registry)
  cut HOST                take a host's link down
  restore HOST            bring its link up and restart its stopped daemons
  stop-agent HOST         SIGTERM the agent of an agent host and wait until it exits
  start-agent HOST [-- AGENT-FLAGS...]
                          start it again (with extra shoal-agent flags) and wait for its session
  restart-agent HOST [--after D] [-- AGENT-FLAGS...]
                          stop-agent, wait D (default 0), start-agent: a planned restart
  demo                    deploy a service, kill an agent host, show the failover
  bench-failover [--runs N] [--cut | --leader-cut | --leader-kill]
                          repeat a fault -> recover -> restore; median and worst: the busiest
                          agent host killed (default) or cut, or the leader manager's link cut
                          or its process killed
`

func main() {
	cfg := lab.Config{}
	fs := flag.NewFlagSet("shoal-lab", flag.ExitOnError)
	fs.StringVar(&cfg.Dir, "dir", "/var/lib/shoal-lab", "lab state, data and logs")
	fs.StringVar(&cfg.BinDir, "bin", defaultBin(), "directory with the shoal binaries")
	fs.StringVar(&cfg.Prefix, "prefix", "shoal-lab-", "name prefix of the lab's network namespaces (one per lab on a machine)")
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() == 0 {
		fs.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, fs.Arg(0), fs.Args()[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "shoal-lab:", err)
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		os.Exit(1)
	}
}

// defaultBin is the directory of this binary, where `make build` puts the others.
func defaultBin() string {
	exe, err := os.Executable()
	if err != nil {
		return "bin"
	}
	return filepath.Dir(exe)
}

func run(ctx context.Context, cfg lab.Config, cmd string, args []string) error {
	if os.Geteuid() != 0 {
		return errors.New("the lab makes network namespaces: run it as root")
	}
	logf := func(format string, a ...any) { fmt.Printf(format+"\n", a...) }
	switch cmd {
	case "up":
		up := flag.NewFlagSet("up", flag.ContinueOnError)
		up.BoolVar(&cfg.ManagersRunTasks, "managers-run-tasks", false,
			"managers also run tasks: each manager host gets its own containerd and an agent with the manager's identity (one node of role manager)")
		if err := up.Parse(args); err != nil {
			return err
		}
		l, err := lab.Up(ctx, cfg, logf)
		if err != nil {
			return err
		}
		fmt.Print("\n" + l.Status())
		return nil
	case "down":
		return lab.Down(cfg, logf)
	case "demo":
		return lab.Demo(ctx, cfg, os.Stdout)
	case "bench-failover":
		return benchFailover(ctx, cfg, args)
	}
	l, err := lab.Load(cfg.Dir)
	if err != nil {
		return err
	}
	l.Cfg.BinDir = cfg.BinDir
	switch cmd {
	case "status":
		fmt.Print(l.Status())
		return nil
	case "ctl":
		return l.Ctl(ctx, os.Stdout, args...)
	case "sh":
		return hostShell(l, args)
	case "ui":
		return forwardUI(ctx, l, args, logf)
	case "kill":
		return kill(ctx, l, args)
	case "start-agent", "restart-agent":
		return restartAgent(ctx, l, cmd, args)
	}
	if len(args) != 1 {
		return fmt.Errorf("%s needs one host name", cmd)
	}
	switch cmd {
	case "stop-agent":
		return l.StopAgent(ctx, args[0])
	case "cut":
		return l.Cut(args[0])
	case "restore":
		return l.Restore(ctx, args[0])
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

func benchFailover(ctx context.Context, cfg lab.Config, args []string) error {
	bf := flag.NewFlagSet("bench-failover", flag.ExitOnError)
	runs := bf.Int("runs", 10, "faults to measure")
	cut := bf.Bool("cut", false, "cut the agent host's link instead of killing it")
	leaderCut := bf.Bool("leader-cut", false, "cut the leader manager's link instead")
	leaderKill := bf.Bool("leader-kill", false, "kill -9 the leader manager's process instead")
	_ = bf.Parse(args)
	switch {
	case *leaderCut && *leaderKill:
		return errors.New("bench-failover: --leader-cut and --leader-kill exclude each other; run them one after the other")
	case *leaderCut || *leaderKill:
		return lab.BenchManagerFailover(ctx, cfg, os.Stdout, *runs, lab.ManagerFault{Leader: true, Cut: *leaderCut})
	}
	return lab.BenchFailover(ctx, cfg, os.Stdout, *runs, *cut)
}

// kill is `kill HOST [DAEMON]`.
func kill(ctx context.Context, l *lab.Lab, args []string) error {
	switch len(args) {
	case 1:
		pids, err := l.Kill(args[0])
		if err == nil {
			fmt.Printf("killed %d processes on %s\n", len(pids), args[0])
		}
		return err
	case 2:
		if err := l.KillProcess(ctx, args[0], args[1]); err != nil {
			return err
		}
		fmt.Printf("killed %s on %s\n", args[1], args[0])
		return nil
	}
	return errors.New("kill needs a host name and optionally one daemon: kill a2, kill m1 manager")
}

// restartAgent is `start-agent HOST [-- FLAGS]` and
// `restart-agent HOST [--after D] [-- FLAGS]`.
func restartAgent(ctx context.Context, l *lab.Lab, cmd string, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%s needs a host name first: %s a2", cmd, cmd)
	}
	host := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	after := fs.Duration("after", 0, "how long the agent stays stopped")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	extra := fs.Args()
	if cmd == "start-agent" {
		if *after != 0 {
			return errors.New("start-agent takes no --after; use restart-agent")
		}
		return l.StartAgent(ctx, host, extra...)
	}
	if err := l.RestartAgent(ctx, host, *after, extra...); err != nil {
		return err
	}
	fmt.Printf("the agent on %s was stopped for %s and holds a session again\n", host, *after)
	return nil
}

func hostShell(l *lab.Lab, args []string) error {
	if len(args) == 0 {
		return errors.New("sh needs a host name (m1, a1, registry, ...)")
	}
	h, err := l.Host(args[0])
	if err != nil {
		return err
	}
	command := args[1:]
	if len(command) == 0 {
		command = []string{"bash", "--norc"}
	}
	c := exec.Command("ip", append([]string{"netns", "exec", h.NS}, command...)...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Inside a host, shoalctl reaches the managers over the lab network.
	c.Env = append(os.Environ(), "PS1=["+h.Name+"] \\w# ", "SHOAL_HOST="+strings.Join(l.ManagerAddrs(), ","))
	return c.Run()
}

// forwardUI serves a manager host's web UI on a loopback address here.
func forwardUI(ctx context.Context, l *lab.Lab, args []string, logf func(string, ...any)) error {
	fs := flag.NewFlagSet("ui", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "loopback address to serve the UI on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host := "m1"
	switch fs.NArg() {
	case 0:
	case 1:
		host = fs.Arg(0)
	default:
		return fmt.Errorf("ui takes at most one host name, not %q", fs.Args())
	}
	return l.ForwardUI(ctx, host, *listen, logf)
}
