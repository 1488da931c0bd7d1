package controlapi

import (
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// maxSpecsSent bounds how many (service, version) pairs a specs_once
// stream remembers having sent (some 50 bytes each). Past it the stream
// forgets them all and sends each again before its next task: the client
// replaces a spec it holds with the same one, so this costs bytes, never
// correctness.
const maxSpecsSent = 4096

// changeForm is how a watch's changes are converted; the shared
// encodings are keyed by it.
type changeForm uint8

const (
	formObjects   changeForm = iota // the objects, a task with its spec
	formSummaries                   // the Event record instead of the object
	formNoSpecs                     // the objects, a task without its spec (specs_once)
)

// watchForm is the form a request asks for.
func watchForm(req *shoalpb.WatchRequest) (changeForm, error) {
	switch {
	case req.GetSpecsOnce() && req.GetSummaries():
		return 0, invalidf("specs_once with summaries: summaries carry no task specs; set one or the other")
	case req.GetSpecsOnce():
		return formNoSpecs, nil
	case req.GetSummaries():
		return formSummaries, nil
	}
	return formObjects, nil
}

// specKey names the spec of a service's tasks of one version, which
// never changes.
type specKey struct {
	service string
	version uint64
}

// specChange returns the change that carries the spec of ev's task when
// the stream sends specs once and has not sent this one, and nil
// otherwise (a spec the state no longer holds included: the task goes
// without one, as it would with its spec). It counts the spec as sent.
func (ws *watchStream) specChange(v *raftstore.View, ev raftstore.Event) *shoalpb.WatchChange {
	if ws.form != formNoSpecs || ev.Task == nil {
		return nil
	}
	k := specKey{service: ev.Task.ServiceID, version: ev.Task.SpecVersion}
	if ws.specsSent != nil && k == ws.lastSpec {
		return nil // the common case: a batch is tasks of one version
	}
	if _, ok := ws.specsSent[k]; ok {
		ws.lastSpec = k
		return nil
	}
	spec := v.ServiceSpec(k.service, k.version)
	if spec == nil {
		return nil
	}
	if ws.specsSent == nil || len(ws.specsSent) >= maxSpecsSent {
		ws.specsSent = make(map[specKey]struct{})
	}
	ws.specsSent[k], ws.lastSpec = struct{}{}, k
	return &shoalpb.WatchChange{Index: ev.Index, Kind: "spec", Action: "current",
		Spec: &shoalpb.TaskSpec{ServiceId: k.service, Version: k.version, Spec: shoalpb.FromServiceSpec(spec)}}
}
