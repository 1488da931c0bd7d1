package ctl

import (
	"fmt"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// writeRolloutPretty writes the update and rollback configs and where the
// last rollout stands.
func writeRolloutPretty(s *section, svc *shoalpb.Service, spec *api.ServiceSpec) {
	writeUpdateConfigPretty(s, "Update config", spec.UpdateConfig)
	writeUpdateConfigPretty(s, "Rollback config", spec.RollbackConfig)
	st := shoalpb.ToUpdateStatus(svc.GetUpdateStatus())
	if st == nil {
		return
	}
	s.head(0, "Update status")
	s.line(1, "State", string(st.State))
	s.line(1, "Spec version", fmt.Sprint(st.SpecVersion))
	s.line(1, "Started", timeText(st.StartedAt, !st.StartedAt.IsZero()))
	if !st.CompletedAt.IsZero() {
		s.line(1, "Completed", timeText(st.CompletedAt, true))
	}
	s.line(1, "Message", st.Message)
}

func writeUpdateConfigPretty(s *section, head string, uc api.UpdateConfig) {
	s.head(0, head)
	s.line(1, "Parallelism", fmt.Sprint(uc.Parallelism))
	s.line(1, "Delay", uc.Delay.Std().String())
	s.line(1, "Monitor", uc.Monitor.Std().String())
	s.line(1, "Max failure ratio", fmt.Sprint(uc.MaxFailureRatio))
	s.line(1, "Failure action", uc.FailureAction)
	s.line(1, "Order", uc.Order)
	if uc.Canary > 0 {
		s.line(1, "Canary", fmt.Sprint(uc.Canary))
		s.line(1, "Auto promote", fmt.Sprint(uc.AutoPromote))
	}
}
