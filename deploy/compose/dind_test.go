// Package compose_test runs the Docker-in-Docker lab end to end: Debian's
// Docker engine (in a network namespace of the test's own), the lab image
// built from this machine's binaries, three managers, three agent
// containers with their own containerd, a service, an agent container
// killed, and everything removed again.
package compose_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDockerInDockerLab(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the Docker-in-Docker lab needs root (it starts a Docker engine and network namespaces); run the tests as root")
	}
	for _, bin := range []string{"dockerd", "docker-compose", "nsenter", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("the Docker-in-Docker lab needs %s: run make deps (it installs docker.io and docker-compose)", bin)
		}
	}
	name := fmt.Sprintf("sdind%d", os.Getpid()%100000)
	dir := filepath.Join(t.TempDir(), "lab")
	env := append(os.Environ(),
		"SHOAL_DIND_DIR="+dir, "SHOAL_DIND_NETNS="+name, "SHOAL_DIND_PROJECT="+name, "SHOAL_DIND_NS="+name)
	run := func(timeout time.Duration, args ...string) (string, error) {
		cmd := exec.Command("./lab-dind.sh", args...) // not t.Context(): it has ended when the cleanup runs down
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.WaitDelay = 5 * time.Second
		timer := time.AfterFunc(timeout, func() { _ = cmd.Process.Kill() })
		defer timer.Stop()
		err := cmd.Run()
		return out.String(), err
	}
	// Cleanups run last-registered first: down before TempDir's removal.
	t.Cleanup(func() {
		if out, err := run(2*time.Minute, "down"); err != nil {
			t.Errorf("lab-dind.sh down: %v\n%s", err, out)
		}
		assertNothingLeft(t, dir, name)
	})

	if out, err := run(8*time.Minute, "up"); err != nil {
		t.Fatalf("lab-dind.sh up: %v\n%s", err, out)
	}
	out, err := run(4*time.Minute, "demo")
	if err != nil {
		t.Fatalf("lab-dind.sh demo: %v\n%s", err, out)
	}
	if !strings.Contains(out, "6 replicas run again on the other agents") {
		t.Fatalf("the demo did not report the replicas running again:\n%s", out)
	}
	t.Logf("demo:\n%s", out)
	// The cleanup check below means something only if the lab's cgroups
	// are where it looks.
	for _, want := range []string{name + "-docker", name + "-a*"} {
		if m, _ := filepath.Glob("/sys/fs/cgroup/memory/" + want); len(m) == 0 {
			t.Errorf("no cgroup /sys/fs/cgroup/memory/%s while the lab runs: the engine or the agents put their cgroups elsewhere", want)
		}
	}
}

// assertNothingLeft checks that down removed the namespace, the mounts, the
// engine and the cgroups of its containers and of the agents' tasks.
func assertNothingLeft(t *testing.T, dir, name string) {
	t.Helper()
	if out, _ := exec.Command("ip", "netns", "list").Output(); bytes.Contains(out, []byte(name)) {
		t.Errorf("network namespace %s is left:\n%s", name, out)
	}
	if mounts, err := os.ReadFile("/proc/mounts"); err == nil && bytes.Contains(mounts, []byte(dir+"/")) {
		t.Errorf("mounts under %s are left", dir)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is left (%v)", dir, err)
	}
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/" + name + "-*")
	if len(cgroups) > 0 {
		t.Errorf("cgroups of the agents' tasks are left: %v", cgroups)
	}
}
