package orchestrator

import (
	"github.com/shoal-sched/shoal/api"
)

// The control API refuses what is out of bounds, but the state may still
// hold it: written by an older manager, or by a command that went around
// the API. The orchestrator acts on such a state within bounds instead of
// looping, allocating or converting without limit, and says so once per
// spec version.

// replicas is how many slots a replicated service gets: its replica count,
// at most the cluster's max-replicas.
func (p *pass) replicas(svc *api.Service) int {
	if svc.Spec.Replicas <= p.maxReplicas {
		return int(svc.Spec.Replicas)
	}
	if p.warned == nil || p.warned[svc.ID] != svc.SpecVersion {
		p.log.Warn("service asks for more replicas than the cluster allows; running the cluster's max-replicas",
			"service", svc.Spec.Name, "replicas", svc.Spec.Replicas, "max_replicas", p.maxReplicas,
			"spec_version", svc.SpecVersion)
		if p.warned != nil {
			p.warned[svc.ID] = svc.SpecVersion
		}
	}
	return int(p.maxReplicas)
}

// historyLimit is how many ended tasks each group of svc keeps.
func historyLimit(svc *api.Service) int {
	return max(historyPerGroup, int(min(svc.Spec.RestartPolicy.MaxAttempts, api.MaxRestartAttempts)))
}
