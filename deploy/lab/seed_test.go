package lab

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// seedStack is the name the seed's compose example is deployed under.
const seedStack = "demo"

// repoFile is the path of a file of this repository.
func repoFile(t *testing.T, rel string) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), rel)
}

// testSeedExample deploys the seed's compose example as it is (upper-case
// services A, B, C, "image: busybox" pulled through the registry standing
// in as Docker Hub's mirror) and checks that every replica runs and that
// each service's replicas started only after those of the service it
// depends on ran: A before B before C, read from the tasks' timestamps.
func testSeedExample(ctx context.Context, t *testing.T, l *Lab) {
	file := repoFile(t, "stack/testdata/seed-example.yml")
	var out strings.Builder
	if err := l.Ctl(ctx, &out, "stack", "deploy", "-c", file, seedStack); err != nil {
		t.Fatalf("stack deploy: %v\n%s", err, out.String())
	}
	t.Cleanup(func() { removeStack(ctx, t, l, seedStack) })
	c, err := l.dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	want := map[string]int{"A": 2, "B": 2, "C": 1}
	started := map[string][2]time.Time{} // first and last time a replica ran
	for _, svc := range []string{"A", "B", "C"} {
		name := seedStack + "_" + svc
		err := waitFor(ctx, 60*time.Second, func() error {
			first, last, n, err := runningSpan(ctx, c, name)
			if err != nil {
				return err
			}
			if n != want[svc] {
				return fmt.Errorf("%s: %d of %d replicas running", name, n, want[svc])
			}
			started[svc] = [2]time.Time{first, last}
			return nil
		})
		if err != nil {
			t.Fatalf("after stack deploy: %v\n%s", err, out.String())
		}
	}
	for _, edge := range [][2]string{{"A", "B"}, {"B", "C"}} {
		dep, svc := started[edge[0]], started[edge[1]]
		if svc[0].Before(dep[1]) {
			t.Errorf("%s's first replica ran at %s, before %s's last one (%s): depends_on not honoured",
				edge[1], svc[0].Format(time.RFC3339Nano), edge[0], dep[1].Format(time.RFC3339Nano))
		}
	}
	t.Logf("started: A %s, B %s, C %s", started["A"][1].Format("15:04:05.000"),
		started["B"][0].Format("15:04:05.000"), started["C"][0].Format("15:04:05.000"))
}

// runningSpan returns when the first and the last of a service's running
// tasks started running, and how many run.
func runningSpan(ctx context.Context, c *client, service string) (first, last time.Time, n int, err error) {
	tasks, err := c.tasks(ctx, service)
	if err != nil {
		return first, last, 0, err
	}
	for _, tk := range tasks {
		if tk.GetStatus().GetState() != "running" || tk.GetDesiredState() != "running" {
			continue
		}
		at := taskRunningAt(tk)
		if n == 0 || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
		n++
	}
	return first, last, n, nil
}

// taskRunningAt is when a running task's status last changed: when it
// began to run.
func taskRunningAt(tk *shoalpb.Task) time.Time { return tk.GetStatus().GetTimestamp().AsTime() }

// removeStack removes a stack and waits until its containers are gone, so
// the subtests after it find only the demo service's containers.
func removeStack(ctx context.Context, t *testing.T, l *Lab, name string) {
	var out strings.Builder
	if err := l.Ctl(ctx, &out, "stack", "rm", name); err != nil {
		t.Errorf("stack rm %s: %v\n%s", name, err, out.String())
		return
	}
	c, err := l.dial()
	if err != nil {
		t.Error(err)
		return
	}
	defer c.close()
	err = waitFor(ctx, 45*time.Second, func() error {
		for _, svc := range []string{"A", "B", "C"} {
			tasks, err := c.tasks(ctx, name+"_"+svc)
			if err != nil {
				continue // the service is gone
			}
			if len(tasks) > 0 {
				return fmt.Errorf("%s_%s still has %d tasks", name, svc, len(tasks))
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("stack rm %s: %v", name, err)
	}
}
