// Command shoal-lab runs a local multi-host shoal lab on network namespaces.
//
//	shoal-lab up | down | status
//	shoal-lab ctl ARGS…          shoalctl against the lab's managers
//	shoal-lab sh HOST [CMD…]     a shell (or a command) on a lab host
//	shoal-lab kill|cut|restore HOST
//	shoal-lab demo               the failover demo (make demo)
//	shoal-lab bench-failover [--runs N] [--cut]
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

const usage = `usage: shoal-lab [--dir DIR] [--bin DIR] COMMAND
commands:
  up                      start 3 managers, 3 agent hosts (own containerd each) and a registry
  down                    stop the lab and remove everything it made
  status                  hosts, links and processes
  ctl ARGS...             run shoalctl against the lab's managers (unix sockets)
  sh HOST [CMD...]        a shell, or a command, inside a lab host (m1, a2, registry, ...)
  kill HOST               SIGKILL every process of a host (daemons, containerd, shims, containers)
  cut HOST                take a host's link down
  restore HOST            bring its link up and restart its stopped daemons
  demo                    deploy a service, kill an agent host, show the failover
  bench-failover [--runs N] [--cut]   repeat kill (or cut) -> recover -> restore; median and worst
`

func main() {
	cfg := lab.Config{}
	fs := flag.NewFlagSet("shoal-lab", flag.ExitOnError)
	fs.StringVar(&cfg.Dir, "dir", "/var/lib/shoal-lab", "lab state, data and logs")
	fs.StringVar(&cfg.BinDir, "bin", defaultBin(), "directory with the shoal binaries")
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
		bf := flag.NewFlagSet("bench-failover", flag.ExitOnError)
		runs := bf.Int("runs", 10, "kills to measure")
		cut := bf.Bool("cut", false, "cut the host's link instead of killing it")
		_ = bf.Parse(args)
		return lab.BenchFailover(ctx, cfg, os.Stdout, *runs, *cut)
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
	}
	if len(args) != 1 {
		return fmt.Errorf("%s needs one host name", cmd)
	}
	switch cmd {
	case "kill":
		pids, err := l.Kill(args[0])
		if err == nil {
			fmt.Printf("killed %d processes on %s\n", len(pids), args[0])
		}
		return err
	case "cut":
		return l.Cut(args[0])
	case "restore":
		return l.Restore(ctx, args[0])
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
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
