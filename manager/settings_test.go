package manager_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// The gossip key rotation interval is a cluster setting, checked on the
// server, kept when another setting changes.
func TestGossipKeyRotationSetting(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{NoGossip: true})
	_, err := c.Client(0).UpdateCluster(t.Context(), &shoalpb.UpdateClusterRequest{GossipKeyRotation: durationpb.New(30 * time.Second)})
	wantCode(t, "a rotation every 30s", err, codes.InvalidArgument, "gossip_key_rotation")
	resp, err := c.Client(0).UpdateCluster(t.Context(), &shoalpb.UpdateClusterRequest{GossipKeyRotation: durationpb.New(6 * time.Hour)})
	if err != nil || resp.GetSettings().GetGossipKeyRotation().AsDuration() != 6*time.Hour {
		t.Fatalf("set 6h: %v, %v", resp, err)
	}
	n := uint64(500)
	if _, err := c.Client(0).UpdateCluster(t.Context(), &shoalpb.UpdateClusterRequest{MaxReplicas: &n}); err != nil {
		t.Fatal(err)
	}
	st, err := c.Client(0).ClusterStatus(t.Context(), &shoalpb.ClusterStatusRequest{})
	if err != nil || st.GetSettings().GetGossipKeyRotation().AsDuration() != 6*time.Hour || st.GetSettings().GetMaxReplicas() != 500 {
		t.Fatalf("status after changing max replicas: %v, %v", st.GetSettings(), err)
	}
}
