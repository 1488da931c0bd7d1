package lab

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// testContainerOptions creates a service with container options through
// shoalctl and reads them back from the container's own output (service
// logs): the hostname template rendered by the agent, the init as PID 1,
// a read-only root with a tmpfs, a sysctl, a ulimit.
func testContainerOptions(ctx context.Context, t *testing.T, l *Lab) {
	script := "hostname; tr '\\0' ' ' </proc/1/cmdline; echo; touch /x 2>/dev/null || echo read-only; " +
		"touch /scratch/x && echo tmpfs; cat /proc/sys/kernel/shmmax; ulimit -n; sleep 3600"
	var out strings.Builder
	if err := l.Ctl(ctx, &out, "service", "create", "--name", "opts", "--hostname", "{{.Service.Name}}-{{.Task.Slot}}",
		"--init", "--read-only", "--mount", "type=tmpfs,target=/scratch", "--sysctl", "kernel.shmmax=65536",
		"--ulimit", "nofile=512:1024", "--stop-signal", "SIGKILL", "--reserve-memory", "16M", l.Image(), "sh", "-c", script); err != nil {
		t.Fatalf("service create: %v\n%s", err, out.String())
	}
	t.Cleanup(func() { _ = l.Ctl(ctx, io.Discard, "service", "rm", "opts") })
	want := []string{"opts-1", "/sbin/docker-init -- sh -c", "read-only", "tmpfs", "65536", "512"}
	err := waitFor(ctx, 30*time.Second, func() error {
		var logs strings.Builder
		if err := l.Ctl(ctx, &logs, "service", "logs", "--raw", "opts"); err != nil {
			return err
		}
		for _, w := range want {
			if !strings.Contains(logs.String(), w) {
				return &missingLine{want: w, logs: logs.String()}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type missingLine struct{ want, logs string }

func (e *missingLine) Error() string { return "logs lack " + e.want + ":\n" + e.logs }
