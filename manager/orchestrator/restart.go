package orchestrator

import (
	"fmt"
	"slices"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// maxBackoffFactor caps the restart delay: it doubles with every
// consecutive failure of a slot, up to this many times the configured delay.
const maxBackoffFactor = 10

// settleDead decides what becomes of the wanted tasks of g that have ended.
// With a live task beside them they are simply superseded. Otherwise the
// newest one goes to the restart policy: orphaned → replaced at once;
// restartable → replaced by a task held back by the restart delay; else it
// stays (the slot is done, and nothing is created for it).
func (p *pass) settleDead(svc *api.Service, g *group) {
	if len(g.dead) == 0 {
		return
	}
	if len(g.live) > 0 {
		for _, d := range g.dead {
			p.shutdown(g, d, "superseded")
		}
		return
	}
	newest := g.dead[len(g.dead)-1]
	for _, d := range g.dead[:len(g.dead)-1] {
		p.shutdown(g, d, "superseded")
	}
	ok, notBefore := p.restartable(svc, g, newest)
	if !ok {
		return
	}
	p.shutdown(g, newest, "replaced")
	p.create(svc, g, notBefore)
}

// restartable applies the restart policy to d, the task of g that just
// ended, and returns whether to replace it and when its replacement may
// start.
func (p *pass) restartable(svc *api.Service, g *group, d *api.Task) (bool, time.Time) {
	if d.Status.State == api.TaskOrphaned {
		return true, time.Time{}
	}
	rp := svc.Spec.RestartPolicy
	switch rp.Condition {
	case api.RestartNone:
		return false, time.Time{}
	case api.RestartOnFailure:
		if !failed(d) {
			return false, time.Time{}
		}
	}
	if rp.MaxAttempts > 0 && restartsBefore(g, d, rp.Window.Std()) >= rp.MaxAttempts {
		return false, time.Time{}
	}
	// Every restart waits at least the configured delay, a clean exit too.
	return true, p.retryAt(svc, max(consecutiveFailures(g, 0), 1))
}

// retryAt is when a new task may start after k consecutive failures in its
// group: at once after none, else after the restart backoff. Paths that
// replace a running task (drain, start-first update) use it too, so a
// replacement that keeps failing is not re-created in a tight loop.
func (p *pass) retryAt(svc *api.Service, k int) time.Time {
	delay := backoff(svc.Spec.RestartPolicy.Delay.Std(), k)
	if delay <= 0 {
		return time.Time{}
	}
	return p.now.Add(delay)
}

// failed reports whether a task ended in failure: refused by its node, or
// its process failed or exited non-zero.
func failed(t *api.Task) bool {
	switch t.Status.State {
	case api.TaskFailed, api.TaskRejected:
		return true
	}
	return t.Status.ExitCode != 0
}

// endedOnItsOwn reports whether a task's end came from the task (and so
// counts as a restart), not from a stop request or a lost node.
func endedOnItsOwn(t *api.Task) bool {
	switch t.Status.State {
	case api.TaskComplete, api.TaskFailed, api.TaskRejected:
		return true
	}
	return false
}

// restartsBefore counts the earlier tasks of g, at d's spec version, that
// ended on their own within window before d ended (window 0: ever). A
// service update starts the count afresh. The reaper keeps at least
// MaxAttempts ended tasks per slot so that the count stays true.
func restartsBefore(g *group, d *api.Task, window time.Duration) uint64 {
	var n uint64
	for _, ts := range [][]*api.Task{g.past, g.dead} {
		for _, t := range ts {
			switch {
			case t.ID == d.ID, t.SpecVersion != d.SpecVersion, !endedOnItsOwn(t):
			case window > 0 && t.Status.Timestamp.Before(d.Status.Timestamp.Add(-window)):
			default:
				n++
			}
		}
	}
	return n
}

// consecutiveFailures counts the failed tasks at the end of g's history
// (newest first, stopping at the first task that did not fail), of spec
// version (0: any).
func consecutiveFailures(g *group, version uint64) int {
	ended := append(slices.Clone(g.past), g.dead...)
	slices.SortFunc(ended, olderTask)
	n := 0
	for i := len(ended) - 1; i >= 0; i-- {
		t := ended[i]
		if !t.Status.State.Terminal() || (version != 0 && t.SpecVersion != version) {
			continue
		}
		if !failed(t) {
			break
		}
		n++
	}
	return n
}

// backoff is the restart delay after k consecutive failures: none for
// k = 0, delay for the first, then doubling, capped at 10 × delay. A delay
// beyond the longest the API accepts counts as that, so the cap cannot
// overflow.
func backoff(delay time.Duration, k int) time.Duration {
	if delay <= 0 || k == 0 {
		return 0
	}
	delay = min(delay, api.MaxDuration.Std())
	d := delay
	for i := 1; i < k && d < maxBackoffFactor*delay; i++ {
		d *= 2
	}
	return min(d, maxBackoffFactor*delay)
}

func restartReason(t *api.Task) string {
	return fmt.Sprintf("restart delay: held until %s", t.NotBefore.UTC().Format(time.RFC3339Nano))
}
