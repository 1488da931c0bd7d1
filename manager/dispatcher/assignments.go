package dispatcher

import (
	"context"
	"sort"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// fingerprint is what of a task the agent acts on: a change of it is sent.
// Status changes are the agent's own reports and are not echoed back.
type fingerprint struct {
	desired     api.TaskState
	specVersion uint64
}

// inSet reports whether the node's agent must know task t: it was placed
// there, was not orphaned, and is not a stopped task that is no longer
// wanted (that one leaves the set, which tells the agent to remove it).
func inSet(t *api.Task) bool {
	st := t.Status.State
	switch {
	case st < api.TaskAssigned, st == api.TaskOrphaned:
		return false
	case t.DesiredState > api.TaskRunning && st.Terminal():
		return false
	}
	return true
}

// send is the session's one sender. It streams the assignment set (a full
// set first, and on a resync request, then the changes, each time a task
// of the node changes) and, between those, the notices: heartbeat answers,
// restart acks, refused reports. The node's network view, when it
// changed, goes just before the assignments of the same wake-up, so that
// an agent knows a network before it is told to start a task on it.
func (s *session) send(ctx context.Context, running []string) error {
	sent := make(map[string]fingerprint)
	var seq, keys uint64
	var view *api.NetworkView
	full := true
	for {
		if m := s.viewUpdate(&view, full); m != nil {
			if err := s.stream.Send(m); err != nil {
				return err
			}
		}
		if msg := s.diff(sent, full, running); msg != nil {
			seq++
			msg.Sequence = seq
			if err := s.stream.Send(&shoalpb.ManagerMessage{Msg: &shoalpb.ManagerMessage_Assignments{Assignments: msg}}); err != nil {
				return err
			}
		}
		if err := s.sendKeys(&keys); err != nil {
			return err
		}
		running = nil
		var err error
		if full, err = s.await(ctx); err != nil || ctx.Err() != nil {
			return err
		}
	}
}

// await sends notices until the node's set may have changed (or the
// session ends); it reports whether the agent asked for a full set.
func (s *session) await(ctx context.Context) (full bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case <-s.wake:
			return false, nil
		case <-s.resync:
			return true, nil
		case m := <-s.notices:
			if err := s.stream.Send(m); err != nil {
				return false, err
			}
		}
	}
}

// diff computes the message that brings the agent from sent to the node's
// current set (nil when nothing changed), and updates sent.
func (s *session) diff(sent map[string]fingerprint, full bool, running []string) *shoalpb.Assignments {
	v := s.d.cfg.State.Read()
	tasks := v.TasksByNode(s.nodeID)
	msg := &shoalpb.Assignments{Full: full}
	cur := make(map[string]bool, len(tasks))
	var extras taskExtras
	for _, t := range tasks {
		if !inSet(t) {
			continue
		}
		cur[t.ID] = true
		fp := fingerprint{desired: t.DesiredState, specVersion: t.SpecVersion}
		if old, ok := sent[t.ID]; full || !ok || old != fp {
			spec := v.ServiceSpec(t.ServiceID, t.SpecVersion)
			msg.Upsert = append(msg.Upsert, shoalpb.FromTaskWithSpec(t, spec))
			extras.add(v, t, spec)
			sent[t.ID] = fp
		}
	}
	msg.Secrets, msg.RegistryAuths = extras.secrets, extras.auths
	for id := range sent {
		if !cur[id] {
			delete(sent, id)
			if !full {
				msg.Remove = append(msg.Remove, id)
			}
		}
	}
	if full {
		// Name the agent's leftovers explicitly; a full set implies it.
		for _, id := range running {
			if !cur[id] {
				msg.Remove = append(msg.Remove, id)
			}
		}
		sort.Strings(msg.Remove)
		return msg
	}
	if len(msg.Upsert) == 0 && len(msg.Remove) == 0 {
		return nil
	}
	sort.Strings(msg.Remove)
	return msg
}
