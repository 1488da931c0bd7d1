package ctl

import (
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func TestClusterUpdate(t *testing.T) {
	f := newFakeControl()
	host := serveTCP(t, f)
	if out := mustRun(t, host, "cluster", "update", "--max-replicas", "20000"); out != "max-replicas is 20000\n" {
		t.Errorf("stdout = %q", out)
	}
	if out := mustRun(t, host, "cluster", "status"); !strings.Contains(out, "Max replicas:  20000") {
		t.Errorf("status does not show the new setting:\n%s", out)
	}
	if out := mustRun(t, host, "cluster", "update", "--max-replicas", "0"); out != "max-replicas is 10000\n" {
		t.Errorf("reset: stdout = %q", out)
	}
	// Checked before sending, with the manager's own rule.
	mustFail(t, host, []string{"cluster", "update", "--max-replicas", "100001"}, `--max-replicas "100001"`, "100000")
	mustFail(t, host, []string{"cluster", "update"}, "nothing to update")
	// The manager's refusal reaches the user as it is.
	mustFail(t, host, []string{"cluster", "update", "--max-replicas", "2"}, `"web" has 3 replicas`)
	reqs := sent[*shoalpb.UpdateClusterRequest](f)
	if len(reqs) != 3 || reqs[0].GetMaxReplicas() != 20000 || reqs[1].MaxReplicas == nil || reqs[1].GetMaxReplicas() != 0 {
		t.Fatalf("requests = %v; want 20000, 0 (set), 2", reqs)
	}
}

// TestScaleOutOfRange: a count no cluster allows is refused before it is
// sent (the report that started the limits: 18446744073709551615 was
// accepted and crashed the manager).
func TestScaleOutOfRange(t *testing.T) {
	f := newFakeControl()
	host := serveTCP(t, f)
	mustFail(t, host, []string{"service", "scale", "web=18446744073709551615"}, `"18446744073709551615"`, "100000")
	mustFail(t, host, []string{"service", "scale", "web=18446744073709551616"}, "want a whole number")
	if n := len(sent[*shoalpb.ScaleServiceRequest](f)); n != 0 {
		t.Fatalf("%d scale requests sent, want none", n)
	}
}
