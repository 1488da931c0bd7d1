package agent

import (
	"reflect"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
)

func TestEffectiveCheck(t *testing.T) {
	sec := api.Duration(time.Second)
	image := &api.Healthcheck{Test: []string{"CMD", "img-check"}, Interval: 5 * sec, Retries: 7}
	tests := []struct {
		name        string
		spec, image *api.Healthcheck
		want        *probeCheck
	}{
		{"none at all", nil, nil, nil},
		{"image only", nil, image, &probeCheck{cmd: []string{"img-check"}, interval: 5 * time.Second, timeout: 30 * time.Second, retries: 7}},
		{"spec NONE hides the image's", &api.Healthcheck{Test: []string{"NONE"}}, image, nil},
		{"image NONE", nil, &api.Healthcheck{Test: []string{"NONE"}}, nil},
		{"spec shell form", &api.Healthcheck{Test: []string{"CMD-SHELL", "test -f /ok"}, Timeout: sec, StartPeriod: 2 * sec}, nil,
			&probeCheck{cmd: []string{"/bin/sh", "-c", "test -f /ok"}, interval: 30 * time.Second, timeout: time.Second, retries: 3, startPeriod: 2 * time.Second}},
		{"spec timing over the image's test", &api.Healthcheck{Interval: sec}, image,
			&probeCheck{cmd: []string{"img-check"}, interval: time.Second, timeout: 30 * time.Second, retries: 7}},
		{"spec test wins", &api.Healthcheck{Test: []string{"CMD", "mine", "-v"}}, image,
			&probeCheck{cmd: []string{"mine", "-v"}, interval: 5 * time.Second, timeout: 30 * time.Second, retries: 7}},
		{"CMD without command", &api.Healthcheck{Test: []string{"CMD"}}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := effectiveCheck(tc.spec, tc.image); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("effectiveCheck = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestHealthTracker(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	probe := func(s, code int) api.ProbeResult { return api.ProbeResult{Start: at(s), End: at(s), ExitCode: code} }
	tests := []struct {
		name   string
		probes []api.ProbeResult
		want   []api.HealthState // after each probe
	}{
		{"success is healthy", []api.ProbeResult{probe(1, 0)}, []api.HealthState{api.HealthHealthy}},
		{"failures in the start period do not count",
			[]api.ProbeResult{probe(1, 1), probe(2, 1), probe(3, 1), probe(11, 1), probe(12, 1)},
			[]api.HealthState{api.HealthStarting, api.HealthStarting, api.HealthStarting, api.HealthStarting, api.HealthUnhealthy}},
		{"after a success the start period is over",
			[]api.ProbeResult{probe(1, 0), probe(2, 1), probe(3, 1)},
			[]api.HealthState{api.HealthHealthy, api.HealthHealthy, api.HealthUnhealthy}},
		{"a success resets the streak",
			[]api.ProbeResult{probe(11, 1), probe(12, 0), probe(13, 1), probe(14, 0)},
			[]api.HealthState{api.HealthStarting, api.HealthHealthy, api.HealthHealthy, api.HealthHealthy}},
		{"unhealthy turns healthy again", []api.ProbeResult{probe(11, 1), probe(12, 1), probe(13, 0)},
			[]api.HealthState{api.HealthStarting, api.HealthUnhealthy, api.HealthHealthy}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &healthTracker{check: &probeCheck{retries: 2, startPeriod: 10 * time.Second}, since: t0, state: api.HealthStarting}
			for i, p := range tc.probes {
				h.observe(p)
				if h.state != tc.want[i] {
					t.Fatalf("after probe %d: %s, want %s", i, h.state, tc.want[i])
				}
			}
			if len(h.history) > api.MaxHealthLog {
				t.Fatalf("history of %d", len(h.history))
			}
		})
	}
}
