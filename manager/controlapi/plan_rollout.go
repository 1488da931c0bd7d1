package controlapi

import (
	"fmt"
	"strings"

	"github.com/shoal-sched/shoal/api"
)

// rolloutPlan says how an update would roll n tasks with cfg, by the
// rollout's own batch rule (api.RolloutBatches).
func rolloutPlan(n int, cfg api.UpdateConfig) string {
	if n == 0 {
		return ""
	}
	batches := api.RolloutBatches(n, cfg)
	var b strings.Builder
	fmt.Fprintf(&b, "rolling update of %d tasks in %d batch(es) of %s, %s", n, len(batches), batchSizes(batches, cfg), cfg.Order)
	if cfg.Canary > 0 {
		fmt.Fprintf(&b, ", %d canaries first then ", cfg.Canary)
		if cfg.AutoPromote {
			b.WriteString("promoted automatically")
		} else {
			b.WriteString("waiting for shoalctl service promote")
		}
	}
	fmt.Fprintf(&b, "; each batch up for %s before the next; on failure (ratio %g): %s",
		max(cfg.Delay, cfg.Monitor).Std(), cfg.MaxFailureRatio, cfg.FailureAction)
	return b.String()
}

// batchSizes lists the sizes of batches after any canary batch ("2, 2, 2").
func batchSizes(batches []int, cfg api.UpdateConfig) string {
	var parts []string
	for _, n := range batches {
		parts = append(parts, fmt.Sprint(n))
	}
	if cfg.Canary > 0 && len(parts) > 0 {
		parts[0] += " (canary)"
	}
	return strings.Join(parts, ", ")
}
