package lab

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestLabManagersRunTasks brings up the layout where managers run tasks
// (each manager host with its own containerd and an agent that takes the
// manager's identity): node ls has three manager nodes, one of them the
// leader, and three workers; a service constrained to node.role==manager
// runs only on the manager hosts, in real containers.
func TestLabManagersRunTasks(t *testing.T) {
	requireLabHost(t)
	cfg := Config{
		Dir:    t.TempDir(),
		Prefix: fmt.Sprintf("slm%d-", os.Getpid()%100000),
		BinDir: buildBinaries(t), ManagersRunTasks: true,
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
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
	var ls strings.Builder
	if err := l.Ctl(ctx, &ls, "node", "ls"); err != nil {
		t.Fatalf("node ls: %v\n%s", err, ls.String())
	}
	t.Logf("node ls:\n%s", ls.String())
	got := map[string]int{}
	for _, line := range strings.Split(ls.String(), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		switch {
		case strings.HasPrefix(f[1], "m") && (f[4] == "Leader" || f[4] == "Reachable") && f[5] == "manager":
			got[f[4]]++
		case strings.HasPrefix(f[1], "a") && f[4] == "worker":
			got["worker"]++
		}
	}
	if got["Leader"] != 1 || got["Reachable"] != 2 || got["worker"] != 3 {
		t.Fatalf("node ls: want 1 Leader, 2 Reachable manager nodes m1-m3 and 3 workers a1-a3, counted %v", got)
	}
	var out strings.Builder
	if err := l.Ctl(ctx, &out, "service", "create", "--name", "monitor", "--replicas", "3",
		"--constraint", "node.role==manager", "--replicas-max-per-node", "1", "--reserve-memory", "16M",
		l.Image(), "sleep", "1d"); err != nil {
		t.Fatalf("service create: %v\n%s", err, out.String())
	}
	for _, h := range l.ByRole(RoleManager) {
		if n := containersOn(t, l, h.Name); n != 1 {
			t.Errorf("manager host %s has %d containers, want 1", h.Name, n)
		}
	}
	for _, h := range l.ByRole(RoleAgent) {
		if n := containersOn(t, l, h.Name); n != 0 {
			t.Errorf("worker host %s has %d containers, want 0", h.Name, n)
		}
	}
}
