package lab

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ip runs the iproute2 command with args and returns its error with the
// command's own message, so a failed step says what the kernel refused.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// netnsExists reports whether a named network namespace exists.
func netnsExists(name string) bool {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}

// listNetns returns the network namespaces whose names start with prefix.
func listNetns(prefix string) []string {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			names = append(names, f[0])
		}
	}
	return names
}

// netnsPIDs lists the processes living in a network namespace: every
// process of a lab host, including containerd shims and containers, which
// is how a host is "killed" without matching process names.
func netnsPIDs(name string) []int {
	out, err := exec.Command("ip", "netns", "pids", name).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// makeBridge creates the namespace that holds the lab's bridge. The bridge
// lives outside the root namespace so nothing in the root namespace has a
// route into the lab subnet.
func makeBridge(ns string) error {
	if err := ip("netns", "add", ns); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "add", "br0", "type", "bridge"},
		{"-n", ns, "link", "set", "br0", "up"},
	} {
		if err := ip(args...); err != nil {
			return err
		}
	}
	return nil
}

// makeHostNetns creates a host namespace wired to the bridge by a veth pair:
// eth0 inside the host with addr (CIDR), and hostVeth on the bridge side.
func makeHostNetns(ns, bridgeNS, hostVeth, addrCIDR string) error {
	if err := ip("netns", "add", ns); err != nil {
		return err
	}
	// Create the pair inside the host namespace, then move one end out, so
	// no interface is ever created in the root namespace.
	steps := [][]string{
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", hostVeth},
		{"-n", ns, "link", "set", hostVeth, "netns", bridgeNS},
		{"-n", bridgeNS, "link", "set", hostVeth, "master", "br0"},
		{"-n", bridgeNS, "link", "set", hostVeth, "up"},
		{"-n", ns, "addr", "add", addrCIDR, "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
	}
	for _, args := range steps {
		if err := ip(args...); err != nil {
			return err
		}
	}
	return nil
}

// setLink brings a host's bridge-side veth up or down (cut / restore).
func setLink(bridgeNS, hostVeth string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return ip("-n", bridgeNS, "link", "set", hostVeth, state)
}

// deleteNetns removes a namespace; its veth ends go with it.
func deleteNetns(name string) error {
	if !netnsExists(name) {
		return nil
	}
	return ip("netns", "del", name)
}

// dataPlanePIDs lists the processes living in the network namespaces an
// agent's data plane made under dir (bind-mounted files, not in
// /run/netns): the containers of tasks on networks, which killNetns of the
// host's own namespace does not see.
func dataPlanePIDs(dir string) []int {
	inodes := map[uint64]bool{}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(filepath.Dir(path)) != "netns" {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Stat(path, &st) == nil {
			inodes[st.Ino] = true
		}
		return nil
	})
	if len(inodes) == 0 {
		return nil
	}
	procs, _ := os.ReadDir("/proc")
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			continue
		}
		var ino uint64
		if _, err := fmt.Sscanf(link, "net:[%d]", &ino); err == nil && inodes[ino] {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killDataPlane SIGKILLs the processes of an agent's task namespaces under
// dir, in rounds until none is left (a dying shim may leave a child).
func killDataPlane(dir string) []int {
	var killed []int
	for round := 0; round < 50; round++ {
		pids := dataPlanePIDs(dir)
		if len(pids) == 0 {
			return killed
		}
		for _, pid := range pids {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed = append(killed, pid)
			}
		}
		time.Sleep(20 * time.Millisecond) // let the kernel reap them before looking again
	}
	return killed
}
