package raftstore

import (
	"fmt"

	"github.com/shoal-sched/shoal/api"
)

// setClusterSettings replaces the cluster-wide settings. Settings that
// services already exceed are refused (api.ValidateSettingsFor): the limit
// would otherwise hold only for requests. The control API checks the same
// before it proposes; this check is the one that cannot race a scale.
func (t *tx) setClusterSettings(c SetCluster) (any, error) {
	cur, ok := t.first(tableCluster, "id", clusterKey).(*api.ClusterInfo)
	switch {
	case !ok:
		return nil, fmt.Errorf("cluster %q: %w (not bootstrapped yet)", c.Cluster.ID, ErrNotFound)
	case cur.ID != c.Cluster.ID:
		return nil, fmt.Errorf("cluster %q: %w (this is cluster %q)", c.Cluster.ID, ErrNotFound, cur.ID)
	}
	err := api.ValidateClusterSettings(*c.Settings)
	if err == nil {
		err = api.ValidateSettingsFor(*c.Settings, t.services())
	}
	if err != nil {
		return nil, fmt.Errorf("cluster settings: %w: %w", ErrInvalid, err)
	}
	if cur.Settings == *c.Settings {
		return *cur, nil
	}
	info := *cur
	info.Settings = *c.Settings
	if !c.At.IsZero() {
		info.UpdatedAt = c.At
	}
	t.insert(tableCluster, &info)
	return info, nil
}

// checkReplicas refuses a spec with more replicas than any cluster allows:
// the control API checks the cluster's own limit before it proposes, and
// this keeps a command that went around it (or an older manager's) from
// putting a count into the state that the orchestrator would have to
// act on.
func checkReplicas(spec *api.ServiceSpec) error {
	if spec.Replicas > api.MaxReplicasCeiling {
		return fmt.Errorf("service %q: replicas %d: more than %d: %w", spec.Name, spec.Replicas, api.MaxReplicasCeiling, ErrInvalid)
	}
	return nil
}

// services lists every service, by name.
func (t *tx) services() []*api.Service {
	it, err := t.txn.Get(tableServices, "name")
	if err != nil {
		panic(fmt.Sprintf("raftstore: list services: %v", err))
	}
	return collect[*api.Service](it)
}
