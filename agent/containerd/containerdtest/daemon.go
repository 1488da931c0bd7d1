// Package containerdtest starts private containerd daemons and a registry
// serving a busybox image, for tests that need the real container runtime.
// Each daemon has its own root, state, config and sockets, and is stopped
// (with every container, shim and mount it made) when the test ends.
//
//	d := containerdtest.StartDaemon(t) // or StartDaemon(t, InNetNS("/run/netns/h1"))
//	reg := containerdtest.StartRegistry(t)
//	rt, err := containerd.New(t.Context(), containerd.Options{
//		Address:            d.Address,
//		Namespace:          "h1",
//		StateDir:           t.TempDir(),
//		InsecureRegistries: []string{reg.Host},
//	})
//	...
//	err = rt.Pull(t.Context(), reg.Image)
package containerdtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// Daemon is a running private containerd.
type Daemon struct {
	// Address is the gRPC unix socket path.
	Address string
	// Dir holds the config, root, state and log of the daemon.
	Dir string

	cmd     *exec.Cmd
	logPath string
}

// Requirements returns an error naming what is missing to run containers
// here: root, containerd, the runc shim or runc.
func Requirements() error {
	if os.Geteuid() != 0 {
		return errors.New("containerd tests must run as root (they start containerd and runc)")
	}
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("containerd tests need %s in PATH (apt install containerd runc): %w", bin, err)
		}
	}
	return nil
}

// DaemonOption changes how StartDaemon runs containerd.
type DaemonOption func(*daemonConfig)

type daemonConfig struct {
	netns string
}

// InNetNS runs containerd (and so its shims and host-network containers)
// in the network namespace at path (like /run/netns/<name>). Only the
// network namespace changes: mounts and cgroups stay the host's.
func InNetNS(path string) DaemonOption {
	return func(c *daemonConfig) { c.netns = path }
}

// StartDaemon starts a private containerd for t and registers its teardown.
// It fails the test with a clear message if not root or containerd is
// missing.
func StartDaemon(t testing.TB, opts ...DaemonOption) *Daemon {
	t.Helper()
	if err := Requirements(); err != nil {
		t.Fatal(err)
	}
	var cfg daemonConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.netns != "" {
		if _, err := exec.LookPath("nsenter"); err != nil {
			t.Fatalf("containerd in a network namespace needs nsenter (apt install util-linux): %v", err)
		}
	}
	// Unix socket paths are limited to 108 bytes: keep the directory short
	// rather than under t.TempDir's long test-named path.
	dir, err := os.MkdirTemp("", "ctd")
	if err != nil {
		t.Fatalf("containerd temp dir: %v", err)
	}
	d := &Daemon{
		Address: filepath.Join(dir, "c.sock"),
		Dir:     dir,
		logPath: filepath.Join(dir, "containerd.log"),
	}
	configPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(configPath, []byte(d.config()), 0o600); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("write containerd config: %v", err)
	}
	logFile, err := os.Create(d.logPath)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("containerd log: %v", err)
	}
	d.cmd = exec.Command("containerd", "--config", configPath)
	if cfg.netns != "" {
		// nsenter execs containerd in place, so the PID is containerd's.
		d.cmd = exec.Command("nsenter", "--net="+cfg.netns, "containerd", "--config", configPath)
	}
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	// If the test binary dies without its cleanups (a test timeout), the
	// daemon should not outlive it. Its shims and containers do: they are
	// made to survive containerd.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		logFile.Close()
		os.RemoveAll(dir)
		t.Fatalf("start containerd: %v", err)
	}
	logFile.Close()
	t.Cleanup(func() { d.stop(t) })
	if err := d.waitServing(t); err != nil {
		t.Fatalf("containerd did not come up: %v\n%s", err, d.logTail())
	}
	return d
}

func (d *Daemon) config() string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  level = "warn"

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, d.root(), d.state(), d.Address, d.Address+".ttrpc", filepath.Join(d.Dir, "opt"))
}

func (d *Daemon) root() string  { return filepath.Join(d.Dir, "root") }
func (d *Daemon) state() string { return filepath.Join(d.Dir, "state") }

func (d *Daemon) waitServing(t testing.TB) error {
	c, err := client.New(d.Address)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		ok, err := c.IsServing(ctx)
		cancel()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving on %s after 20s: %v", d.Address, err)
		}
		if exited(d.cmd) {
			return errors.New("containerd exited")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exited reports whether the process has ended, without reaping it.
func exited(cmd *exec.Cmd) bool {
	return syscall.Kill(cmd.Process.Pid, 0) != nil || isZombie(cmd.Process.Pid)
}

func isZombie(pid int) bool {
	state, _ := procStat(pid)
	return state == "" || state == "Z"
}

// procStat returns the state and start time of pid from /proc/pid/stat
// (empty strings if it is gone). The start time tells a process from a
// later one that reused its PID.
func procStat(pid int) (state, start string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", ""
	}
	// The fields follow the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", ""
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return "", ""
	}
	return fields[0], fields[19]
}

// proc is a process identified by PID and start time.
type proc struct {
	pid   int
	start string
}

func procOf(pid int) (proc, bool) {
	state, start := procStat(pid)
	if pid <= 0 || state == "" {
		return proc{}, false
	}
	return proc{pid: pid, start: start}, true
}

// logTail returns the end of the daemon's log, for failure messages.
func (d *Daemon) logTail() string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return fmt.Sprintf("(no containerd log: %v)", err)
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "containerd log (end):\n" + string(b)
}

// stop removes every task and container the daemon holds, stops it, kills
// any shim left behind, unmounts what it mounted and removes its files.
func (d *Daemon) stop(t testing.TB) {
	shims := d.shimPIDs()
	tasks, err := d.removeAll(t)
	if err != nil {
		// A loaded machine can leave runc stuck on one task (its state
		// call times out). Its processes are killed, and the daemon asked
		// once more, before anything is said to be left behind.
		t.Logf("containerd teardown, first try: %v", err)
		for _, p := range tasks {
			killIfAlive(p)
		}
		more, err := d.removeAll(t)
		tasks = append(tasks, more...)
		if err != nil {
			t.Errorf("containerd teardown: %v", err)
		}
	}
	d.terminate(t)
	// The shims are found twice: from the state dir before the teardown,
	// and by their command line after it (a delete that failed half-way
	// can take a shim's state files and leave the shim running). What the
	// shims started goes first: a container's processes outlive a killed
	// shim.
	shims = append(shims, shimsServing(d.Address)...)
	for _, p := range append(childrenOf(shims), tasks...) {
		killIfAlive(p)
	}
	for _, p := range shims {
		killIfAlive(p)
	}
	if err := unmountUnder(d.Dir); err != nil {
		t.Errorf("containerd teardown: %v", err)
	}
	if t.Failed() {
		t.Log(d.logTail())
	}
	if err := os.RemoveAll(d.Dir); err != nil {
		t.Errorf("containerd teardown: remove %s: %v", d.Dir, err)
	}
}

// shimPIDs reads the pid files the runc v2 runtime writes for each shim.
func (d *Daemon) shimPIDs() []proc {
	matches, _ := filepath.Glob(filepath.Join(d.state(), "io.containerd.runtime.v2.task", "*", "*", "shim.pid"))
	var procs []proc
	for _, m := range matches {
		if p, ok := procOf(readPID(m)); ok {
			procs = append(procs, p)
		}
	}
	return procs
}

// shimsServing lists the running shims whose daemon is the one at
// address, from their command lines.
func shimsServing(address string) []proc {
	var out []proc
	for _, pid := range allPIDs() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 0 || !strings.Contains(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-address" && args[i+1] == address {
				if p, ok := procOf(pid); ok {
					out = append(out, p)
				}
				break
			}
		}
	}
	return out
}

// childrenOf lists the processes whose parent is one of parents.
func childrenOf(parents []proc) []proc {
	want := map[int]bool{}
	for _, p := range parents {
		want[p.pid] = true
	}
	var out []proc
	for _, pid := range allPIDs() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil && want[ppid] {
			if p, ok := procOf(pid); ok {
				out = append(out, p)
			}
		}
	}
	return out
}

func allPIDs() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// removeAll kills and deletes every task and deletes every container (with
// its snapshot) in every namespace. It returns the PIDs of the tasks so
// the caller can make sure they are gone.
func (d *Daemon) removeAll(t testing.TB) ([]proc, error) {
	c, err := client.New(d.Address)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// t.Context is already cancelled when cleanups run.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 30*time.Second)
	defer cancel()
	nss, err := c.NamespaceService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var procs []proc
	var errs []error
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		containers, err := c.Containers(nctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list containers in %s: %w", ns, err))
			continue
		}
		for _, ctr := range containers {
			if task, err := ctr.Task(nctx, nil); err == nil {
				if p, ok := procOf(int(task.Pid())); ok {
					procs = append(procs, p)
				}
				if _, err := task.Delete(nctx, client.WithProcessKill); err != nil {
					errs = append(errs, fmt.Errorf("delete task %s/%s: %w", ns, ctr.ID(), err))
				}
			}
			if err := ctr.Delete(nctx, client.WithSnapshotCleanup); err != nil {
				errs = append(errs, fmt.Errorf("delete container %s/%s: %w", ns, ctr.ID(), err))
			}
		}
		removeNamespaceLeftovers(ns)
	}
	return procs, errors.Join(errs...)
}

// removeNamespaceLeftovers removes the (now empty) per-namespace cgroup
// and runc state directories runc leaves behind. Busy ones (another daemon
// still uses the namespace name) stay.
func removeNamespaceLeftovers(ns string) {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", ns))
	dirs = append(dirs, filepath.Join("/sys/fs/cgroup", ns), filepath.Join("/run/containerd/runc", ns))
	for _, dir := range dirs {
		_ = syscall.Rmdir(dir)
	}
}

func (d *Daemon) terminate(t testing.TB) {
	pid := d.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Errorf("containerd teardown: SIGTERM pid %d: %v", pid, err)
	}
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-done
	}
}

// killIfAlive SIGKILLs p if that very process (same start time) still runs.
func killIfAlive(p proc) {
	state, start := procStat(p.pid)
	if state == "" || state == "Z" || start != p.start {
		return
	}
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
}

// unmountUnder lazily unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountPath(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for space...).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
