package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireLabHost fails (never skips) when the lab cannot run here, saying
// what is missing: `make test` installs it.
func requireLabHost(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the lab test makes network namespaces and runs containerd: run it as root (make test)")
	}
	for _, tool := range []string{"ip", "containerd", "runc", "ctr"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run 'make deps' (apt-get install containerd runc iproute2)", tool)
		}
	}
}

// buildBinaries builds the lab's binaries into a temp dir, in one go
// command so that the packages they share compile once.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	bins := map[string]string{ // what go build names it -> what the lab runs
		"manager": "shoal-manager", "agent": "shoal-agent", "ctl": "shoalctl", "lab-registry": "shoal-lab-registry",
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/manager", "./cmd/agent", "./cmd/ctl", "./cmd/lab-registry")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for from, to := range bins {
		if err := os.Rename(filepath.Join(dir, from), filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// containersOn counts the containers in an agent host's containerd.
func containersOn(t *testing.T, l *Lab, host string) int {
	t.Helper()
	n, err := l.Containers(host)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// labTimeout bounds the whole lab test: one lab, brought up once, serves
// every subtest.
const labTimeout = 8 * time.Minute

// TestLab brings one lab up (3 managers, 3 agent hosts with their own
// containerd, a registry) and runs every fault against a 6-replica service
// on it; each subtest starts from the same state (see baseline). The
// order matters once: the leader faults come right after the agent host
// faults, so that the managers that may take over have seen those hosts
// die and come back (a new leader must not act on that old news).
func TestLab(t *testing.T) {
	requireLabHost(t)
	cfg := Config{
		Dir:    t.TempDir(),
		Prefix: fmt.Sprintf("slt%d-", os.Getpid()%100000),
		BinDir: buildBinaries(t),
	}
	ctx, cancel := context.WithTimeout(t.Context(), labTimeout)
	defer cancel()
	t.Cleanup(func() {
		if err := Down(cfg, t.Logf); err != nil {
			t.Errorf("lab down: %v", err)
		}
		assertNothingLeft(t, cfg)
	})
	l, err := Up(ctx, cfg, t.Logf)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	if _, err := l.Deploy(ctx, io.Discard, labReplicas); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	for _, sub := range []struct {
		name string
		run  func(context.Context, *testing.T, *Lab)
	}{
		{"agent host kill", testHostKill},
		{"agent host cut", testHostCut},
		{"leader kill", func(ctx context.Context, t *testing.T, l *Lab) {
			testManagerFault(ctx, t, l, ManagerFault{Leader: true, Cut: false})
		}},
		{"leader cut", func(ctx context.Context, t *testing.T, l *Lab) {
			testManagerFault(ctx, t, l, ManagerFault{Leader: true, Cut: true})
		}},
		{"follower kill", func(ctx context.Context, t *testing.T, l *Lab) {
			testManagerFault(ctx, t, l, ManagerFault{Leader: false, Cut: false})
		}},
		{"agent restart after 2s", func(ctx context.Context, t *testing.T, l *Lab) {
			testAgentRestart(ctx, t, l, 2*time.Second)
		}},
		{"agent restart after 20s", func(ctx context.Context, t *testing.T, l *Lab) {
			testAgentRestart(ctx, t, l, 20*time.Second)
		}},
		{"agent restart hold passes", testRestartHoldPasses},
		{"bad input", testBadInput},
		{"seed compose example", testSeedExample},
		{"container options", testContainerOptions},
		{"secrets", testSecrets},
		{"health and digest", testHealthAndDigest},
	} {
		t.Run(sub.name, func(t *testing.T) {
			baseline(ctx, t, l)
			sub.run(ctx, t, l)
		})
	}
}

// testHostKill: SIGKILL to everything on the busiest agent host; its
// replicas run elsewhere, and the host, restored, is ready again.
func testHostKill(ctx context.Context, t *testing.T, l *Lab) {
	kill, err := l.MeasureFailover(ctx, DemoService, labReplicas, false)
	if err != nil {
		t.Fatalf("after a kill: %v", err)
	}
	t.Logf("kill: %s", kill)
	if err := l.Restore(ctx, kill.Host); err != nil {
		t.Fatal(err)
	}
	if err := l.waitNodesReady(ctx, 3, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// testHostCut: the busiest agent host's link cut; its replicas run
// elsewhere while its own containers keep running, and once back it removes
// the containers of the replaced tasks.
func testHostCut(ctx context.Context, t *testing.T, l *Lab) {
	cut, err := l.MeasureFailover(ctx, DemoService, labReplicas, true)
	if err != nil {
		t.Fatalf("after a link cut: %v", err)
	}
	t.Logf("cut: %s", cut)
	if n := containersOn(t, l, cut.Host); n == 0 {
		t.Fatalf("a cut host keeps running its containers until it is back; %s has none", cut.Host)
	}
	if err := l.Restore(ctx, cut.Host); err != nil {
		t.Fatal(err)
	}
	// Back on the network, the host learns its tasks were replaced and
	// removes their containers.
	c, err := l.dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	nodeID, err := l.nodeID(ctx, c, cut.Host)
	if err != nil {
		t.Fatal(err)
	}
	err = waitFor(ctx, 30*time.Second, func() error {
		tasks, err := c.tasks(ctx, DemoService)
		if err != nil {
			return err
		}
		live := 0
		for _, tk := range tasks {
			if tk.GetNodeId() == nodeID && tk.GetDesiredState() == "running" {
				live++
			}
		}
		if n := containersOn(t, l, cut.Host); n != live {
			return fmt.Errorf("%s has %d containers, %d tasks assigned", cut.Host, n, live)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("stale containers on the restored host: %v", err)
	}
}

// testBadInput: an image that does not exist is rejected with the
// registry's error and the service stays inspectable; a memory limit below
// what the command needs ends in failed with the OOM reason.
func testBadInput(ctx context.Context, t *testing.T, l *Lab) {
	c, err := l.dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	missing := l.RegistryAddr() + "/shoal/no-such-image:latest"
	// The leader resolves the tag first: no digest, no service.
	var refused strings.Builder
	if err := l.Ctl(ctx, &refused, "service", "create", "--detach", "--name", "ghost", missing); err == nil ||
		!strings.Contains(refused.String(), "no-such-image") || !strings.Contains(refused.String(), "--no-resolve-image") {
		t.Fatalf("create of a missing image: %v: %s; want it refused naming the image", err, refused.String())
	}
	// Kept as a tag, the agents try to pull it and reject the task.
	if err := l.Ctl(ctx, io.Discard, "service", "create", "--detach", "--name", "ghost", "--no-resolve-image",
		"--restart-max-attempts", "2", missing); err != nil {
		t.Fatalf("create ghost: %v", err)
	}
	// Fill a shell variable with 64 MiB under an 8 MiB limit.
	hog := "a=$(dd if=/dev/zero bs=1M count=64 2>/dev/null | tr '\\0' x); sleep 100"
	if err := l.Ctl(ctx, io.Discard, "service", "create", "--detach", "--name", "hog",
		"--restart-condition", "none", "--limit-memory", "8M", l.Image(), "sh", "-c", hog); err != nil {
		t.Fatalf("create hog: %v", err)
	}
	for _, tc := range []struct{ service, state, errPart string }{
		{"ghost", "rejected", "no-such-image"},
		{"hog", "failed", "out of memory"},
	} {
		err := waitFor(ctx, 60*time.Second, func() error {
			tasks, err := c.tasks(ctx, tc.service)
			if err != nil {
				return err
			}
			for _, tk := range tasks {
				st := tk.GetStatus()
				if st.GetState() == tc.state && strings.Contains(st.GetErr()+" "+st.GetMessage(), tc.errPart) {
					return nil
				}
			}
			return fmt.Errorf("no task of %s is %s with %q yet (%d tasks)", tc.service, tc.state, tc.errPart, len(tasks))
		})
		if err != nil {
			t.Errorf("%s: %v", tc.service, err)
		}
	}
	var out strings.Builder
	if err := l.Ctl(ctx, &out, "service", "inspect", "ghost"); err != nil || !strings.Contains(out.String(), "no-such-image") {
		t.Errorf("service inspect ghost after its tasks were rejected: %v\n%s", err, out.String())
	}
}

// assertNothingLeft checks that the lab left no namespace, mount or cgroup.
func assertNothingLeft(t *testing.T, cfg Config) {
	t.Helper()
	if ns := listNetns(cfg.Prefix); len(ns) > 0 {
		t.Errorf("namespaces left behind: %v", ns)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), cfg.Dir+"/") {
		t.Errorf("mounts left under %s", cfg.Dir)
	}
	if _, err := os.Stat(cfg.Dir); err == nil {
		entries, _ := os.ReadDir(cfg.Dir)
		if len(entries) > 0 {
			t.Errorf("lab dir %s not removed", cfg.Dir)
		}
	}
	for _, ctrl := range []string{"memory", "cpu", "pids"} {
		matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", ctrl, cfg.Prefix+"*"))
		if len(matches) > 0 {
			t.Errorf("cgroups left behind: %v", matches)
		}
	}
}
