package controlapi_test

import (
	"context"
	"math"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// rolloutFields are the bad values of the update and rollback configs.
func rolloutFields() []specField {
	upd := func(u *shoalpb.UpdateConfig) func(*shoalpb.ServiceSpec) {
		return func(s *shoalpb.ServiceSpec) { s.UpdateConfig = u }
	}
	rb := func(u *shoalpb.UpdateConfig) func(*shoalpb.ServiceSpec) {
		return func(s *shoalpb.ServiceSpec) { s.RollbackConfig = u }
	}
	return []specField{
		{"update max_failure_ratio over 1", upd(&shoalpb.UpdateConfig{FailureAction: "pause", MaxFailureRatio: 1.5}),
			[]string{"spec.update_config.max_failure_ratio", `"1.5"`, "between 0 and 1"}},
		{"update max_failure_ratio negative", upd(&shoalpb.UpdateConfig{MaxFailureRatio: -0.5}),
			[]string{"spec.update_config.max_failure_ratio", `"-0.5"`, "between 0 and 1"}},
		{"update max_failure_ratio NaN", upd(&shoalpb.UpdateConfig{MaxFailureRatio: math.NaN()}),
			[]string{"spec.update_config.max_failure_ratio", `"NaN"`, "between 0 and 1"}},
		{"update canary not under replicas", upd(&shoalpb.UpdateConfig{Canary: 1}),
			[]string{"spec.update_config.canary", `"1"`, "less than the replicas (1)"}},
		{"update auto_promote without canary", upd(&shoalpb.UpdateConfig{AutoPromote: true}),
			[]string{"spec.update_config.auto_promote", "needs canary"}},
		{"rollback parallelism overflow", rb(&shoalpb.UpdateConfig{Parallelism: math.MaxUint64}),
			[]string{"spec.rollback_config.parallelism", "18446744073709551615", "100000"}},
		{"rollback failure_action rollback", rb(&shoalpb.UpdateConfig{FailureAction: "rollback"}),
			[]string{"spec.rollback_config.failure_action", `"rollback"`, "pause or continue"}},
		{"rollback order malformed", rb(&shoalpb.UpdateConfig{Order: "sideways"}),
			[]string{"spec.rollback_config.order", `"sideways"`, "stop-first or start-first"}},
		{"rollback monitor negative", rb(&shoalpb.UpdateConfig{Monitor: dur(-1)}),
			[]string{"spec.rollback_config.monitor", `"-1s"`, "negative"}},
		{"rollback delay huge", rb(&shoalpb.UpdateConfig{Delay: dur(100 * 24 * 3600)}),
			[]string{"spec.rollback_config.delay", `"2400h0m0s"`, "24h0m0s"}},
		{"rollback canary", rb(&shoalpb.UpdateConfig{Canary: 1}),
			[]string{"spec.rollback_config.canary", `"1"`, "update setting only"}},
	}
}

// rolloutRequestCases are bad rollback and promote requests.
func rolloutRequestCases() []badCase {
	rollback := func(req *shoalpb.RollbackServiceRequest) func(context.Context, shoalpb.ControlClient) error {
		return func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.RollbackService(ctx, req)
			return err
		}
	}
	return []badCase{
		{name: "rollback ref empty", call: rollback(&shoalpb.RollbackServiceRequest{}), parts: []string{"service", "missing"}},
		{name: "rollback ref oversize", call: rollback(&shoalpb.RollbackServiceRequest{Service: big(300)}), parts: []string{"service", "at most 256"}},
		{name: "rollback config ratio", call: rollback(&shoalpb.RollbackServiceRequest{Service: "web",
			RollbackConfig: &shoalpb.UpdateConfig{FailureAction: "pause", MaxFailureRatio: 2}}),
			parts: []string{"rollback_config.max_failure_ratio", `"2"`, "between 0 and 1"}},
		{name: "rollback never updated", call: rollback(&shoalpb.RollbackServiceRequest{Service: "agentd"}),
			parts: []string{`"agentd"`, "no previous spec"}, barrier: true},
		{name: "promote ref empty", call: func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.PromoteService(ctx, &shoalpb.PromoteServiceRequest{})
			return err
		}, parts: []string{"service", "missing"}},
	}
}
