package raftstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// sample is the value of the single series of family name in reg (a
// histogram's observation count); ok is false without one.
func sample(t *testing.T, reg prometheus.Gatherer, name string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			m := f.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestRaftMetrics: one Metrics outlives a member's restart. Commits,
// applies, the leader change and a snapshot (size and time) are counted;
// the restart restores from the snapshot and the index gauges follow the
// reopened member.
func TestRaftMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.SnapshotThreshold = 20
		cfg.SnapshotInterval = 100 * time.Millisecond
		cfg.Metrics = metrics
	})
	n := c.nodes[0]
	if err := n.VerifyLeader(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		createService(t, n, fmt.Sprintf("m%d", i))
	}
	waitFor(t, 15*time.Second, "no snapshot counted", func() bool {
		size, _ := sample(t, reg, "shoal_raft_snapshot_size_bytes")
		persisted, _ := sample(t, reg, "shoal_raft_snapshot_persist_duration_seconds")
		return size > 0 && persisted > 0
	})
	for name, least := range map[string]float64{
		"shoal_raft_commit_duration_seconds": 30, "shoal_raft_fsm_applied_entries_total": 30,
		"shoal_raft_leader_changes_total": 1, "shoal_raft_is_leader": 1, "shoal_raft_applied_index": 30,
	} {
		if got, ok := sample(t, reg, name); !ok || got < least {
			t.Errorf("%s = %v (present %v), want at least %v", name, got, ok, least)
		}
	}
	c.kill(0)
	if _, ok := sample(t, reg, "shoal_raft_applied_index"); ok {
		t.Error("shoal_raft_applied_index still reported with no member open")
	}
	c.restart(0, nil)
	c.waitLeader()
	waitFor(t, 15*time.Second, "restore or index not reported after the restart", func() bool {
		restored, _ := sample(t, reg, "shoal_raft_snapshot_restore_duration_seconds")
		applied, _ := sample(t, reg, "shoal_raft_applied_index")
		return restored > 0 && applied >= 30
	})
}
