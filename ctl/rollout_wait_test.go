package ctl

import (
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// TestFoldRollout: how a wait for spec version want reads the manager's
// rollout status.
func TestFoldRollout(t *testing.T) {
	svc := func(version uint64, state string, stVersion uint64) *shoalpb.Service {
		return &shoalpb.Service{SpecVersion: version, Spec: &shoalpb.ServiceSpec{Name: "web"},
			UpdateStatus: &shoalpb.UpdateStatus{State: state, SpecVersion: stVersion, Message: state + " because"}}
	}
	tests := []struct {
		name      string
		svc       *shoalpb.Service
		want      uint64
		converged bool   // given a view converged by its slots
		failure   string // part of the failure ("" none)
	}{
		{"no rollout of this version", svc(3, "completed", 2), 3, true, ""},
		{"updating", svc(3, "updating", 3), 3, false, ""},
		{"completed", svc(3, "completed", 3), 3, true, ""},
		{"paused", svc(3, "paused", 3), 3, false, "paused because"},
		{"rolled back from the version waited for", svc(4, "rolled_back", 4), 3, false, "rolled_back because"},
		{"rolling back from it", svc(4, "rolling_back", 4), 3, false, ""},
		{"rollback waited for, done", svc(4, "rolled_back", 4), 4, true, ""},
		{"awaiting promotion", svc(3, "awaiting_promotion", 3), 3, true, ""},
		{"a later update took over", svc(5, "updating", 5), 3, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := view{name: "web", desired: 2, done: 2, converged: true, settle: defaultSettle}
			foldRollout(&v, tt.svc, tt.want)
			if tt.failure == "" && v.failure != "" || !strings.Contains(v.failure, tt.failure) {
				t.Errorf("failure %q, want %q", v.failure, tt.failure)
			}
			if tt.failure == "" && v.converged != tt.converged {
				t.Errorf("converged %v, want %v (%s)", v.converged, tt.converged, v.status())
			}
		})
	}
}
