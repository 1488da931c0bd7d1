package controlapi

import (
	"errors"
	"fmt"
	"strings"

	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// logTarget resolves the argument of service logs as docker does: a
// service (name, id, id prefix), or else a task (id or unique id prefix),
// whose logs alone are then fetched.
func logTarget(v *raftstore.View, ref string) (serviceID, taskID string, err error) {
	svc, err := findService(v, ref)
	if err == nil {
		return svc.ID, "", nil
	}
	if !errors.Is(err, raftstore.ErrNotFound) {
		return "", "", err
	}
	if t := v.Task(ref); t != nil {
		return t.ServiceID, t.ID, nil
	}
	var found []string
	var svcOf string
	for _, t := range v.Tasks() {
		if strings.HasPrefix(t.ID, ref) {
			found = append(found, t.ID)
			svcOf = t.ServiceID
		}
	}
	switch len(found) {
	case 0:
		return "", "", fmt.Errorf("service %q: %w (no service has this name, id or id prefix, and no task this id or id prefix)",
			ref, raftstore.ErrNotFound)
	case 1:
		return svcOf, found[0], nil
	}
	return "", "", fmt.Errorf("task %q is %w: it prefixes %d task ids; give more of the id", ref, ErrAmbiguous, len(found))
}

// tooOld reports whether a line was written before the request's since
// (lines that report a fetch error always pass).
func (ls *logSession) tooOld(l *shoalpb.LogLine) bool {
	since := ls.req.GetSince()
	if since == nil || l.GetStream() == "error" || l.GetTime() == nil {
		return false
	}
	return l.GetTime().AsTime().Before(since.AsTime())
}
