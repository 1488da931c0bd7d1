package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// DemoService is the service the demo deploys.
const DemoService = "web"

// demoCommand runs until stopped and exits at once on SIGTERM (a plain
// sleep as PID 1 ignores it and would be killed only after the grace period).
const demoCommand = "trap 'exit 0' TERM; while :; do sleep 1; done"

// Ctl runs shoalctl against the lab's managers with out as its output.
func (l *Lab) Ctl(ctx context.Context, out io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, l.bin("shoalctl"), append([]string{"--host", strings.Join(l.Sockets(), ",")}, args...)...)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = out, out, os.Stdin
	return cmd.Run()
}

// Deploy creates the demo service (replicas of the registry's busybox) and
// waits until every replica runs. It returns how long that took.
func (l *Lab) Deploy(ctx context.Context, out io.Writer, replicas int) (time.Duration, error) {
	t0 := time.Now()
	if err := l.Ctl(ctx, out, "service", "create", "--detach", "--name", DemoService,
		"--replicas", fmt.Sprint(replicas), "--reserve-memory", "16M", "--reserve-cpu", "0.05",
		l.Image(), "sh", "-c", demoCommand); err != nil {
		return 0, fmt.Errorf("service create: %w", err)
	}
	c, err := l.dial()
	if err != nil {
		return 0, err
	}
	defer c.close()
	err = waitFor(ctx, 60*time.Second, func() error {
		tasks, err := c.tasks(ctx, DemoService)
		if err != nil {
			return err
		}
		if _, running := converged(tasks, replicas, ""); !running {
			return fmt.Errorf("not all %d replicas of %s are running", replicas, DemoService)
		}
		return nil
	})
	return time.Since(t0), err
}

// Demo is `make demo`: a lab, a service, a killed host, the failover shown.
func Demo(ctx context.Context, cfg Config, out io.Writer) error {
	step := func(format string, args ...any) { fmt.Fprintf(out, "\n==> "+format+"\n", args...) }
	logf := func(format string, args ...any) { fmt.Fprintf(out, "    "+format+"\n", args...) }
	l, err := Load(cfg.Dir)
	if err != nil || !netnsExists(l.BridgeNS) {
		step("starting the lab: 3 managers, 3 agent hosts (each with its own containerd), a registry")
		if l, err = Up(ctx, cfg, logf); err != nil {
			return err
		}
	} else {
		step("the lab is already up; removing any previous demo service")
		_ = l.Ctl(ctx, io.Discard, "service", "rm", DemoService)
	}
	step("shoalctl cluster status")
	_ = l.Ctl(ctx, out, "cluster", "status")
	step("shoalctl node ls")
	_ = l.Ctl(ctx, out, "node", "ls")

	const replicas = 6
	step("shoalctl service create --name %s --replicas %d %s sh -c %q", DemoService, replicas, l.Image(), demoCommand)
	took, err := l.Deploy(ctx, out, replicas)
	if err != nil {
		return err
	}
	logf("all %d replicas running %s after create", replicas, ms(took))
	_ = l.Ctl(ctx, out, "service", "ps", DemoService)

	step("killing the busiest agent host (SIGKILL to its agent, containerd, shims and containers)")
	f, err := l.MeasureFailover(ctx, DemoService, replicas, false)
	if err != nil {
		return fmt.Errorf("failover of %s: %w", f.Host, err)
	}
	fmt.Fprintf(out, "    t0            kill %s (%d replicas on it)\n", f.Host, f.Lost)
	fmt.Fprintf(out, "    t0 + %7s  node %s marked down\n", ms(f.Detected), f.Host)
	fmt.Fprintf(out, "    t0 + %7s  replacements placed on the other hosts\n", ms(f.Placed))
	fmt.Fprintf(out, "    t0 + %7s  all %d replicas running again\n", ms(f.Running), replicas)
	_ = l.Ctl(ctx, out, "service", "ps", DemoService)
	_ = l.Ctl(ctx, out, "node", "ls")

	step("restoring %s: its agent comes back and removes the containers that were replaced", f.Host)
	if err := l.Restore(ctx, f.Host); err != nil {
		return err
	}
	if err := l.waitNodesReady(ctx, len(l.ByRole(RoleAgent)), 30*time.Second); err != nil {
		return err
	}
	// containerd kept the records of the killed containers; the agent,
	// told its tasks were replaced, removes them.
	err = waitFor(ctx, 30*time.Second, func() error {
		n, err := l.Containers(f.Host)
		if err == nil && n > 0 {
			err = fmt.Errorf("%s still holds %d containers of replaced tasks", f.Host, n)
		}
		return err
	})
	if err != nil {
		return err
	}
	logf("%s is ready again and holds no container of the replaced tasks", f.Host)
	_ = l.Ctl(ctx, out, "node", "ls")
	step("the lab stays up: 'deploy/lab/lab ctl service ps %s', 'deploy/lab/lab sh a1', 'make lab-down'", DemoService)
	return nil
}

// benchReplicas is the size of the service the failover benches run.
const benchReplicas = 6

// benchLab loads the lab (or starts one) and deploys the demo service with
// benchReplicas replicas, all running. The first deploy pulls the image on
// every host; the timed one finds it there, as a cluster running a service
// usually does.
func benchLab(ctx context.Context, cfg Config, out io.Writer) (*Lab, error) {
	l, err := Load(cfg.Dir)
	if err != nil || !netnsExists(l.BridgeNS) {
		fmt.Fprintln(out, "starting the lab")
		if l, err = Up(ctx, cfg, func(string, ...any) {}); err != nil {
			return nil, err
		}
	}
	for _, timed := range []bool{false, true} {
		_ = l.Ctl(ctx, io.Discard, "service", "rm", DemoService)
		took, err := l.Deploy(ctx, io.Discard, benchReplicas)
		if err != nil {
			return nil, err
		}
		if timed {
			fmt.Fprintf(out, "%-26s %8s\n", fmt.Sprintf("create %d (all running)", benchReplicas), ms(took))
		}
	}
	return l, nil
}

// BenchFailover repeats kill (or cut) → recover → restore n times and
// reports each run and the median and worst of each part.
func BenchFailover(ctx context.Context, cfg Config, out io.Writer, n int, cut bool) error {
	l, err := benchLab(ctx, cfg, out)
	if err != nil {
		return err
	}
	const replicas = benchReplicas
	if err := l.MeasureScaleAndDrain(ctx, out, replicas, 30); err != nil {
		return err
	}
	if err := l.waitNodesReady(ctx, len(l.ByRole(RoleAgent)), 30*time.Second); err != nil {
		return err
	}
	mode := "kill"
	if cut {
		mode = "cut"
	}
	var detect, placed, running []time.Duration
	for i := 1; i <= n; i++ {
		f, err := l.MeasureFailover(ctx, DemoService, replicas, cut)
		if err != nil {
			return fmt.Errorf("run %d: %w", i, err)
		}
		fmt.Fprintf(out, "%s %2d/%d  %s\n", mode, i, n, f)
		detect, placed, running = append(detect, f.Detected), append(placed, f.Placed), append(running, f.Running)
		if err := l.Restore(ctx, f.Host); err != nil {
			return err
		}
		if err := l.waitNodesReady(ctx, len(l.ByRole(RoleAgent)), 30*time.Second); err != nil {
			return err
		}
	}
	printSummaries(out, []summaryRow{
		{"detection (node down)", detect}, {"rescheduled (all placed)", placed}, {"recovered (all running)", running},
	})
	return nil
}

// BenchManagerFailover repeats a manager fault (the leader's link cut, or
// its process killed) n times on a running service: each run times until a
// write succeeds and until every agent holds a session with the new leader,
// counts the replicas restarted and the nodes marked down (both must be 0),
// restores the manager and lets the cluster settle. A run that does not
// recover, or restarts a replica, ends the bench with what it saw.
func BenchManagerFailover(ctx context.Context, cfg Config, out io.Writer, n int, fault ManagerFault) error {
	l, err := benchLab(ctx, cfg, out)
	if err != nil {
		return err
	}
	var writes, sessions []time.Duration
	for i := 1; i <= n; i++ {
		f, err := l.MeasureManagerFault(ctx, fault, DemoService)
		fmt.Fprintf(out, "%s %2d/%d  %s\n", fault, i, n, f)
		if err == nil && (f.Restarts > 0 || len(f.NodesDown) > 0) {
			err = fmt.Errorf("%d replicas restarted, nodes marked down: %v", f.Restarts, f.NodesDown)
		}
		if err != nil {
			for _, c := range f.Changes {
				fmt.Fprintf(out, "    %s\n", c)
			}
			if n := len(f.TaskChanges); n > 0 {
				fmt.Fprintf(out, "    %d task changes the managers made, the first: %s\n", n, f.TaskChanges[0])
			}
			return fmt.Errorf("run %d: %w", i, err)
		}
		writes, sessions = append(writes, f.Write), append(sessions, f.Resessioned)
	}
	printSummaries(out, []summaryRow{
		{"write accepted again", writes}, {"agents re-sessioned", sessions},
	})
	fmt.Fprintf(out, "%-26s %d in %d runs\n", "replicas restarted", 0, n)
	return nil
}

type summaryRow struct {
	name string
	ds   []time.Duration
}

func printSummaries(out io.Writer, rows []summaryRow) {
	for _, row := range rows {
		s := summarize(row.ds)
		fmt.Fprintf(out, "%-26s median %8s  worst %8s\n", row.name, ms(s.Median), ms(s.Worst))
	}
}
