package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/shoal-sched/shoal/agent/containerd"
)

// Down removes everything a lab made, also after a crashed `up` or a
// deleted state file: it ends the lab's processes (by PID: those it
// recorded and those living in its namespaces), unmounts what containerd
// mounted under the lab dir (and the network namespaces the agents' data
// planes bind-mounted there, after killing what runs in them), removes the
// containers' cgroups and shim sockets, deletes the namespaces (and with them every veth and the bridge)
// and finally the lab dir.
func Down(cfg Config, logf func(string, ...any)) error {
	cfg.defaults()
	l, err := Load(cfg.Dir)
	if errors.Is(err, ErrNotUp) {
		l = Plan(cfg)
	} else if err != nil {
		logf("lab state unreadable (%v): cleaning by name", err)
		l = Plan(cfg)
	}
	// Ask the managers for every task they know before stopping them: the
	// shims of containers on a host that was killed left sockets whose
	// names derive from task IDs no longer in containerd's state dir.
	taskIDs := l.knownTaskIDs()
	var errs []error
	for _, h := range l.Hosts {
		for name, p := range h.Procs {
			if p.Alive() {
				logf("stop %s on %s (pid %d)", name, h.Name, p.PID)
				errs = append(errs, p.Stop(2*time.Second))
			}
		}
	}
	namespaces := listNetns(l.Cfg.Prefix)
	for _, ns := range namespaces {
		if pids := killNetns(ns); len(pids) > 0 {
			logf("killed %d leftover processes in %s", len(pids), ns)
		}
	}
	if pids := killDataPlane(l.Cfg.Dir); len(pids) > 0 {
		logf("killed %d leftover processes in the agents' task namespaces", len(pids))
	}
	shimSockets := l.shimSockets(taskIDs)
	errs = append(errs, unmountUnder(l.Cfg.Dir, logf))
	errs = append(errs, l.removeCgroups(logf))
	removed := 0
	for _, s := range shimSockets {
		if err := os.Remove(s); err == nil {
			removed++
		}
	}
	if removed > 0 {
		logf("removed %d shim sockets", removed)
	}
	// runc keeps its state per containerd namespace.
	for _, h := range l.TaskHosts() {
		errs = append(errs, os.RemoveAll(filepath.Join("/run/containerd/runc", l.ContainerdNamespace(h))))
	}
	for _, ns := range namespaces {
		errs = append(errs, deleteNetns(ns))
	}
	if len(listNetns(l.Cfg.Prefix)) == 0 {
		errs = append(errs, os.RemoveAll(l.Cfg.Dir))
	} else {
		errs = append(errs, fmt.Errorf("namespaces %v are still there", listNetns(l.Cfg.Prefix)))
	}
	return errors.Join(errs...)
}

// shimSockets lists the sockets containerd 1.6 made for the shims of the lab
// agents' containers, /run/containerd/s/sha256(grpc address/namespace/id),
// for the containers in each host's state dir and the given task IDs.
func (l *Lab) shimSockets(taskIDs []string) []string {
	var out []string
	for _, h := range l.TaskHosts() {
		ns := l.ContainerdNamespace(h)
		cdir := filepath.Join(h.Dir(l), "containerd")
		ids := append([]string(nil), taskIDs...)
		tasks, _ := os.ReadDir(filepath.Join(cdir, "state", "io.containerd.runtime.v2.task", ns))
		for _, t := range tasks {
			ids = append(ids, t.Name())
		}
		for _, id := range ids {
			out = append(out, containerd.ShimSocket(filepath.Join(cdir, "containerd.sock"), ns, id))
		}
	}
	return out
}

// knownTaskIDs asks the managers (if any answers) for every task ID.
func (l *Lab) knownTaskIDs() []string {
	c, err := l.dial()
	if err != nil {
		return nil
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	tasks, err := c.tasks(ctx, "")
	if err != nil {
		return nil
	}
	ids := make([]string, 0, len(tasks))
	for _, t := range tasks {
		ids = append(ids, t.GetId())
	}
	return ids
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string, logf func(string, ...any)) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], abs+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	var errs []error
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			continue
		}
		logf("unmounted %s", m)
	}
	return errors.Join(errs...)
}

// removeCgroups removes the cgroups runc made for the lab's containers,
// /sys/fs/cgroup/<controller>/<containerd namespace>/<container> on cgroup
// v1 and /sys/fs/cgroup/<namespace>/<container> on v2.
func (l *Lab) removeCgroups(logf func(string, ...any)) error {
	roots := []string{"/sys/fs/cgroup"}
	if entries, err := os.ReadDir("/sys/fs/cgroup"); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				roots = append(roots, filepath.Join("/sys/fs/cgroup", e.Name()))
			}
		}
	}
	var errs []error
	for _, h := range l.TaskHosts() {
		for _, root := range roots {
			dir := filepath.Join(root, l.ContainerdNamespace(h))
			if _, err := os.Stat(dir); err != nil {
				continue
			}
			children, _ := os.ReadDir(dir)
			for _, c := range children {
				if c.IsDir() {
					errs = append(errs, rmdirIgnoreMissing(filepath.Join(dir, c.Name())))
				}
			}
			if err := rmdirIgnoreMissing(dir); err != nil {
				errs = append(errs, err)
			} else {
				logf("removed cgroup %s", dir)
			}
		}
	}
	return errors.Join(errs...)
}

func rmdirIgnoreMissing(dir string) error {
	if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	return nil
}
