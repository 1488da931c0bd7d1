package ctl

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// TestRestartingNodeShown: a node whose agent is restarting reads as such
// in node ls, and node inspect --pretty says until when it is held.
func TestRestartingNodeShown(t *testing.T) {
	n := fixtureNode("nodeworker3cccccccccccc3", "worker-3", "restarting", "active", "worker", 2, 4<<30, "a")
	n.StatusMessage = "the agent is restarting and will be back within 30s"
	n.RestartDeadline = timestamppb.New(time.Date(2025, 6, 1, 12, 0, 30, 0, time.UTC))
	var ls strings.Builder
	if err := writeNodeTable(&ls, []*shoalpb.NodeSummary{{Node: n}}, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ls.String(), "Restarting") {
		t.Errorf("node ls does not show the node restarting:\n%s", ls.String())
	}
	var pretty strings.Builder
	if err := writeNodesPretty(&pretty, []*shoalpb.Node{n}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Status:", "Restarting", "back within 30s", "Restart deadline: 2025-06-01T12:00:30Z"} {
		if !strings.Contains(pretty.String(), want) {
			t.Errorf("node inspect --pretty lacks %q:\n%s", want, pretty.String())
		}
	}
}
