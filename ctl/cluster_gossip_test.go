package ctl

import (
	"testing"
	"time"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func TestClusterUpdateGossipKeyRotation(t *testing.T) {
	f := newFakeControl()
	host := serveTCP(t, f)
	mustRun(t, host, "cluster", "update", "--gossip-key-rotation", "6h")
	// Checked before sending, with the manager's own rule.
	mustFail(t, host, []string{"cluster", "update", "--gossip-key-rotation", "30s"}, `--gossip-key-rotation "30s"`, "1m0s")
	reqs := sent[*shoalpb.UpdateClusterRequest](f)
	if len(reqs) != 1 || reqs[0].GetGossipKeyRotation().AsDuration() != 6*time.Hour || reqs[0].MaxReplicas != nil {
		t.Fatalf("requests = %v; want one asking for 6h alone", reqs)
	}
}
