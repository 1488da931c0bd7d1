package containerd

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

var unifiedCgroups = sync.OnceValue(func() bool {
	var st unix.Statfs_t
	return unix.Statfs(cgroupRoot, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
})

// oomKills returns how many processes the kernel's OOM killer killed in the
// container's memory cgroup. The count survives the container's exit until
// its task is deleted, which is why this runtime only deletes tasks on
// Remove. With cgroup v1 it is the oom_kill line of memory.oom_control
// (kernel 4.13+), with cgroup v2 the one of memory.events.
func oomKills(cgroupsPath string) (uint64, error) {
	if cgroupsPath == "" || strings.Contains(cgroupsPath, ":") {
		// A systemd-style "slice:prefix:name" path: not what this runtime
		// sets, and not resolvable to a directory here.
		return 0, fmt.Errorf("cgroups path %q is not a cgroupfs path", cgroupsPath)
	}
	file := filepath.Join(cgroupRoot, "memory", cgroupsPath, "memory.oom_control")
	if unifiedCgroups() {
		file = filepath.Join(cgroupRoot, cgroupsPath, "memory.events")
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, fmt.Errorf("read oom count: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || key != "oom_kill" {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read oom count from %s: %w", file, err)
		}
		return n, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read oom count: %w", err)
	}
	return 0, fmt.Errorf("read oom count: no oom_kill line in %s", file)
}
