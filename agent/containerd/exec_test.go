package containerd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/deploy/labregistry"
)

// TestExecProbe runs health commands in a real container: exit codes,
// output (bounded), the container's environment, and a timeout that kills
// the probe and leaves the container running.
func TestExecProbe(t *testing.T) {
	e := newEnv(t)
	task := e.task(t, "sleep", "3600")
	task.Spec.Env = []string{"PROBE_WORD=from-env"}
	e.run(t, task)
	t.Cleanup(func() { _ = e.rt.Remove(context.WithoutCancel(t.Context()), task.ID) })

	cases := []struct {
		name     string
		cmd      []string
		wantCode int
		wantOut  string
	}{
		{"success with output", []string{"sh", "-c", "echo ok $PROBE_WORD"}, 0, "ok from-env\n"},
		{"failure code and stderr", []string{"sh", "-c", "echo bad >&2; exit 3"}, 3, "bad\n"},
		{"missing binary", []string{"/no/such/probe"}, -1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			code, out, err := e.rt.Exec(ctx, task.ID, c.cmd)
			if c.wantCode == -1 {
				if err == nil && code == 0 {
					t.Fatalf("exec of a missing binary: code %d, no error", code)
				}
				return
			}
			if err != nil || code != c.wantCode || out != c.wantOut {
				t.Fatalf("exec = %d %q %v, want %d %q", code, out, err, c.wantCode, c.wantOut)
			}
		})
	}
	t.Run("output is bounded", func(t *testing.T) {
		_, out, err := e.rt.Exec(t.Context(), task.ID, []string{"sh", "-c", "yes | head -c 100000"})
		if err != nil || len(out) != api.MaxProbeOutput {
			t.Fatalf("exec: %d bytes, %v; want %d bytes", len(out), err, api.MaxProbeOutput)
		}
	})
	t.Run("timeout kills the probe", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		if _, _, err := e.rt.Exec(ctx, task.ID, []string{"sleep", "600"}); err == nil {
			t.Fatal("a probe past its timeout returned no error")
		}
		code, out, err := e.rt.Exec(t.Context(), task.ID, []string{"sh", "-c", "ps | grep -c '[s]leep 600' || true"})
		if err != nil || code != 0 || strings.TrimSpace(out) != "0" {
			t.Fatalf("after the timeout: %d %q %v; want the probe killed", code, out, err)
		}
	})
}

func TestImageHealthcheck(t *testing.T) {
	e := newEnv(t)
	if err := e.rt.Pull(t.Context(), e.registry.HealthImage); err != nil {
		t.Fatal(err)
	}
	h, err := e.rt.ImageHealthcheck(t.Context(), e.registry.HealthImage)
	if err != nil {
		t.Fatal(err)
	}
	want := labregistry.ImageHealthcheck
	if h == nil || strings.Join(h.Test, " ") != strings.Join(want.Test, " ") || h.Interval.Std() != want.Interval || h.Retries != uint64(want.Retries) {
		t.Fatalf("image healthcheck = %+v, want %+v", h, want)
	}
	if h, err := e.rt.ImageHealthcheck(t.Context(), e.registry.Image); err != nil || h != nil {
		t.Fatalf("plain image healthcheck = %+v, %v; want none", h, err)
	}
}
