package api

import (
	"math"
	"strconv"
	"strings"
)

// applyUpdateDefaults fills in an update (or rollback) config left unset.
// Its key field is FailureAction: a config without one is unset as a
// whole and becomes docker's defaults (one task at a time, stop-first,
// a 5 s monitor window, pause on the first failure). A config with a
// failure action keeps its zeros: parallelism 0 replaces every task at
// once, as in docker, and monitor 0 judges tasks only until they run.
func applyUpdateDefaults(u *UpdateConfig) {
	if u.FailureAction == "" {
		u.FailureAction = FailurePause
		if u.Parallelism == 0 {
			u.Parallelism = DefaultParallelism
		}
		if u.Monitor == 0 {
			u.Monitor = DefaultMonitor
		}
	}
	if u.Order == "" {
		u.Order = OrderStopFirst
	}
}

// validateUpdate checks the update or rollback config at field of spec s.
func validateUpdate(field string, u UpdateConfig, s *ServiceSpec) []error {
	var errs []error
	if u.Parallelism > MaxReplicasCeiling {
		errs = append(errs, fieldErr(field+".parallelism", strconv.FormatUint(u.Parallelism, 10),
			"more than %d, the most replicas a service may have (0 means all at once)", MaxReplicasCeiling))
	}
	switch u.FailureAction {
	case "", FailurePause, FailureContinue, FailureRollback:
	default:
		errs = append(errs, fieldErr(field+".failure_action", u.FailureAction, "want pause, continue or rollback"))
	}
	if u.FailureAction == FailureRollback && strings.HasSuffix(field, "rollback_config") {
		errs = append(errs, fieldErr(field+".failure_action", u.FailureAction, "a rollback cannot roll back; want pause or continue"))
	}
	switch u.Order {
	case "", OrderStopFirst, OrderStartFirst:
	default:
		errs = append(errs, fieldErr(field+".order", u.Order, "want stop-first or start-first"))
	}
	if r := u.MaxFailureRatio; math.IsNaN(r) || r < 0 || r > 1 {
		errs = append(errs, fieldErr(field+".max_failure_ratio", strconv.FormatFloat(r, 'g', -1, 64),
			"must be between 0 and 1 (a share of the service's tasks)"))
	}
	errs = append(errs, validateCanary(field, u, s)...)
	return appendErrs(errs,
		checkDuration(field+".delay", u.Delay, MaxDuration),
		checkDuration(field+".monitor", u.Monitor, MaxDuration))
}

// validateCanary checks the canary settings: update config only, a
// replicated service only, and fewer canaries than replicas (with as many
// canaries as replicas, there is nothing left to promote).
func validateCanary(field string, u UpdateConfig, s *ServiceSpec) []error {
	if u.Canary == 0 {
		if u.AutoPromote {
			return []error{fieldErr(field+".auto_promote", "true", "needs canary to be at least 1")}
		}
		return nil
	}
	n := strconv.FormatUint(u.Canary, 10)
	switch {
	case !strings.HasSuffix(field, "update_config"):
		return []error{fieldErr(field+".canary", n, "canaries are an update setting only")}
	case s.Mode == ModeGlobal:
		return []error{fieldErr(field+".canary", n, "canaries need a replicated service")}
	case u.Canary >= s.Replicas:
		return []error{fieldErr(field+".canary", n, "must be less than the replicas (%d)", s.Replicas)}
	}
	return nil
}

// PrepareRollbackConfig fills in the defaults of a rollback config sent
// with a rollback request (field names it) and checks it.
func PrepareRollbackConfig(field string, u *UpdateConfig) error {
	applyUpdateDefaults(u)
	return joinErrors(validateUpdate(field, *u, &ServiceSpec{Mode: ModeReplicated}))
}
