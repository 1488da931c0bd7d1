package ctl

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// taskUp is api.TaskUp for a task as the control API lists it (with the
// spec of its version): running, and healthy when a check applies.
func taskUp(t *shoalpb.Task) bool {
	at, err := shoalpb.ToTask(t)
	if err != nil {
		return false
	}
	var spec *api.ServiceSpec
	if t.GetSpec() != nil {
		spec = at.Spec
	}
	return api.TaskUp(at, spec)
}

// withHealth adds the task's health to a state word: "running (healthy)".
func withHealth(state string, st *shoalpb.TaskStatus) string {
	if h := st.GetHealth(); h != "" {
		return state + " (" + h + ")"
	}
	return state
}

// lastProbe describes the newest probe of a task: "exit 1: no /ok".
func lastProbe(st *shoalpb.TaskStatus) string {
	log := st.GetHealthLog()
	if len(log) == 0 {
		return ""
	}
	p := log[len(log)-1]
	out := strings.Join(strings.Fields(p.GetOutput()), " ")
	return fmt.Sprintf("exit %d: %s", p.GetExitCode(), out)
}

// keepDigest gives a stack's spec the digest the service already runs when
// its image is the same: a redeploy of the same files changes nothing, and
// a changed image is resolved again by the managers.
func keepDigest(cur *shoalpb.ServiceSpec, spec *api.ServiceSpec) {
	if cur.GetImage() == spec.Image && spec.ImageDigest == "" {
		spec.ImageDigest = cur.GetImageDigest()
	}
}

// writeHealthcheckPretty prints a spec's health check for inspect --pretty.
func writeHealthcheckPretty(s *section, h *api.Healthcheck) {
	switch {
	case h == nil:
		return
	case api.HealthcheckDisabled(h):
		s.line(1, "Healthcheck", "none (NONE: the image's HEALTHCHECK is off too)")
		return
	}
	s.head(1, "Healthcheck")
	s.line(2, "Test", strings.Join(h.Test, " "))
	if h.Interval > 0 {
		s.line(2, "Interval", h.Interval.Std().String())
	}
	if h.Timeout > 0 {
		s.line(2, "Timeout", h.Timeout.Std().String())
	}
	if h.StartPeriod > 0 {
		s.line(2, "Start period", h.StartPeriod.Std().String())
	}
	if h.Retries > 0 {
		s.line(2, "Retries", fmt.Sprint(h.Retries))
	}
}

// pinnedImage is a spec's image with the digest its tasks run, as docker
// prints it ("busybox:1.36@sha256:...").
func pinnedImage(s *shoalpb.ServiceSpec) string {
	if d := s.GetImageDigest(); d != "" {
		return s.GetImage() + "@" + d
	}
	return s.GetImage()
}

func quoteOrEmpty(s string) string {
	if s == "" {
		return ""
	}
	return strconv.Quote(s)
}
