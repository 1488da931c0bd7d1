package shoalpb

import "github.com/shoal-sched/shoal/api"

// FromUpdateConfig converts an update (or rollback) config to the message
// (nil for the zero config).
func FromUpdateConfig(u api.UpdateConfig) *UpdateConfig {
	if u == (api.UpdateConfig{}) {
		return nil
	}
	return &UpdateConfig{
		Parallelism: u.Parallelism, Delay: dur(u.Delay), FailureAction: u.FailureAction,
		Monitor: dur(u.Monitor), Order: u.Order, MaxFailureRatio: u.MaxFailureRatio,
		Canary: u.Canary, AutoPromote: u.AutoPromote,
	}
}

// ToUpdateConfig converts the message to a domain config (zero for nil).
func ToUpdateConfig(u *UpdateConfig) api.UpdateConfig {
	return api.UpdateConfig{
		Parallelism: u.GetParallelism(), Delay: fromDur(u.GetDelay()), FailureAction: u.GetFailureAction(),
		Monitor: fromDur(u.GetMonitor()), Order: u.GetOrder(), MaxFailureRatio: u.GetMaxFailureRatio(),
		Canary: u.GetCanary(), AutoPromote: u.GetAutoPromote(),
	}
}

// FromUpdateStatus converts a rollout status to the message.
func FromUpdateStatus(s *api.UpdateStatus) *UpdateStatus {
	if s == nil {
		return nil
	}
	return &UpdateStatus{
		State: string(s.State), SpecVersion: s.SpecVersion, StartedAt: ts(s.StartedAt),
		CompletedAt: ts(s.CompletedAt), Message: s.Message, FirstVersion: s.FirstVersion,
	}
}

// ToUpdateStatus converts the message to a rollout status.
func ToUpdateStatus(s *UpdateStatus) *api.UpdateStatus {
	if s == nil {
		return nil
	}
	return &api.UpdateStatus{
		State: api.UpdateState(s.GetState()), SpecVersion: s.GetSpecVersion(), StartedAt: fromTS(s.GetStartedAt()),
		CompletedAt: fromTS(s.GetCompletedAt()), Message: s.GetMessage(), FirstVersion: s.GetFirstVersion(),
	}
}
