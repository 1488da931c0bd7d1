package ctl

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// TestE2EServiceLogs reads logs through shoalctl, a real manager and real
// agents whose runtime is the fake: all lines, --tail 1, and --follow
// printing lines written while it runs.
func TestE2EServiceLogs(t *testing.T) {
	e := startE2E(t, 2)
	for _, rt := range e.runtimes {
		rt.ScriptImage("logger:1", fake.Script{Logs: []string{"one", "two", "three"}})
	}
	e.mustRun("service", "create", "-d", "--name", "web", "--replicas", "2", "logger:1")
	var tasks []*shoalpb.Task
	e.cluster.WaitFor(30*time.Second, func() error {
		resp, err := e.cluster.Client(0).ListTasks(t.Context(), &shoalpb.ListTasksRequest{Service: "web"})
		if err != nil {
			return err
		}
		tasks = nil
		for _, task := range resp.GetTasks() {
			if task.GetStatus().GetState() == "running" {
				tasks = append(tasks, task)
			}
		}
		if len(tasks) != 2 {
			return fmt.Errorf("%d of 2 tasks of web running", len(tasks))
		}
		return nil
	})
	// Lines of task T: "web.SLOT.TASK12@worker-N | TEXT".
	prefix := map[string]*regexp.Regexp{}
	for _, task := range tasks {
		prefix[task.GetId()] = regexp.MustCompile(fmt.Sprintf(`^web\.%d\.%s@worker-[12] +\| (.*)$`,
			task.GetSlot(), regexp.QuoteMeta(task.GetId()[:12])))
	}
	texts := func(out string) map[string][]string {
		t.Helper()
		got := map[string][]string{}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			matched := false
			for id, re := range prefix {
				if m := re.FindStringSubmatch(line); m != nil {
					got[id] = append(got[id], m[1])
					matched = true
				}
			}
			if !matched && line != "" {
				t.Errorf("line %q names no running task of web", line)
			}
		}
		return got
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "logs", "web"}, "one two three"},
		{[]string{"service", "logs", "--tail", "1", "web"}, "three"},
	} {
		got := texts(e.mustRun(tc.args...))
		for _, task := range tasks {
			if s := strings.Join(got[task.GetId()], " "); s != tc.want {
				t.Errorf("shoalctl %s: task %s printed %q, want %q", strings.Join(tc.args, " "), task.GetId(), s, tc.want)
			}
		}
	}

	// Follow until --timeout while the task keeps writing: the lines
	// written meanwhile come after the tail.
	task := tasks[0]
	var rt *fake.Runtime
	for _, r := range e.runtimes {
		if r.Task(task.GetId()) != nil {
			rt = r
		}
	}
	done := make(chan result, 1)
	go func() { done <- e.run("service", "logs", "-f", "--tail", "1", "--timeout", "2s", "web") }()
	var r result
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case r = <-done:
		case <-tick.C:
			rt.Print(task.GetId(), fmt.Sprintf("tick %d", n))
			continue
		}
		break
	}
	if r.code != 0 {
		t.Fatalf("followed logs: exit %d, stderr %q", r.code, r.stderr)
	}
	// The tail is "three", or a tick if one was written before the agent
	// read the log; every tick after it follows, none lost.
	got := texts(r.stdout)[task.GetId()]
	if len(got) < 2 || (got[0] != "three" && !strings.HasPrefix(got[0], "tick ")) {
		t.Fatalf("followed task %s printed %q; want its last line, then ticks", task.GetId(), got)
	}
	var prev int
	for i, line := range got[1:] {
		var n int
		if _, err := fmt.Sscanf(line, "tick %d", &n); err != nil || (i > 0 && n != prev+1) {
			t.Fatalf("followed task %s printed %q; want consecutive ticks after the tail", task.GetId(), got)
		}
		prev = n
	}
}
