package lab

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// ManagerFault is a fault of one manager: its link cut, or its process
// killed (SIGKILL, the host stays up), on the leader or on a follower.
type ManagerFault struct {
	Leader bool // the leader; else a follower
	Cut    bool // cut its host's link; else kill -9 its manager process
}

func (f ManagerFault) String() string {
	target, how := "follower", "kill"
	if f.Leader {
		target = "leader"
	}
	if f.Cut {
		how = "cut"
	}
	return target + "-" + how
}

// ManagerFailover is what one manager fault did, seen from outside.
type ManagerFailover struct {
	Fault   ManagerFault
	Faulted string        // the manager host that was broken
	Leader  string        // the manager host that leads afterwards
	Write   time.Duration // fault -> the first write that succeeds
	// Resessioned: fault -> every agent holds a session with Leader (by
	// the times in the agents' logs); AgentSessions: each agent's session
	// then, in agent host order.
	Resessioned   time.Duration
	AgentSessions []Session
	Recovered     bool // writes and every session came back
	// What must not happen, all measured after the faulted manager is
	// back and the cluster settled:
	Restarts    int      // replicas whose container did not survive
	Changes     []string // how the running replicas changed
	NodesDown   []string // nodes marked down meanwhile
	TaskChanges []string // task creations and stops the managers applied
}

func (f ManagerFailover) String() string {
	recovery := fmt.Sprintf("write after %s, agents re-sessioned after %s", ms(f.Write), ms(f.Resessioned))
	if !f.Recovered {
		recovery = "not recovered"
		if f.Write > 0 {
			recovery = fmt.Sprintf("write after %s, agents not all re-sessioned", ms(f.Write))
		}
	}
	return fmt.Sprintf("%s %s: leader %s; %s; %d restarts, %d nodes marked down",
		f.Fault, f.Faulted, f.Leader, recovery, f.Restarts, len(f.NodesDown))
}

// Patience of a manager fault measurement: how long the cluster may take
// to accept writes and hold every session again, and how long it must then
// stay as it is.
const (
	managerFaultTimeout = 30 * time.Second
	managerFaultSettle  = 2 * time.Second
)

// MeasureManagerFault breaks one manager (fault), times until a write
// succeeds and every agent holds a session with the leader, restores the
// manager, lets the cluster settle and reports what changed for the running
// replicas of service. The result is filled as far as the measurement got
// when the error is not nil.
func (l *Lab) MeasureManagerFault(ctx context.Context, fault ManagerFault, service string) (ManagerFailover, error) {
	res := ManagerFailover{Fault: fault}
	leader, err := l.Leader(ctx)
	if err != nil {
		return res, err
	}
	target, err := l.faultTarget(leader, fault.Leader)
	if err != nil {
		return res, err
	}
	res.Faulted = target.Name
	c, err := l.dialManagers(true, target.Name)
	if err != nil {
		return res, err
	}
	defer c.close()
	before, err := l.TakePlacement(ctx, c, service)
	if err != nil {
		return res, err
	}
	w, err := l.Watch(ctx)
	if err != nil {
		return res, err
	}
	defer w.Stop()
	marks, err := l.logMarks()
	if err != nil {
		return res, err
	}
	probe, err := l.nodeID(ctx, c, l.ByRole(RoleAgent)[0].Name)
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	if fault.Cut {
		err = l.Cut(target.Name)
	} else {
		err = l.KillProcess(ctx, target.Name, "manager")
	}
	if err != nil {
		return res, err
	}
	err = l.recoverFrom(ctx, c, &res, leader, marks, probe, t0)
	if rerr := l.Restore(ctx, target.Name); rerr != nil {
		return res, errors.Join(err, rerr)
	}
	if err == nil {
		err = l.settleAfterRestore(ctx, c, &res, target)
	}
	after, perr := l.TakePlacement(ctx, c, service)
	res.Restarts, res.Changes = before.Restarts(after), before.Changes(after)
	res.NodesDown, res.TaskChanges = w.NodesMarked("down"), w.TaskChanges(service)
	return res, errors.Join(err, perr)
}

// faultTarget is the leader, or the first follower.
func (l *Lab) faultTarget(leader *Host, wantLeader bool) (*Host, error) {
	if wantLeader {
		return leader, nil
	}
	for _, h := range l.ByRole(RoleManager) {
		if h != leader {
			return h, nil
		}
	}
	return nil, errors.New("the lab has no follower manager")
}

func (l *Lab) logMarks() (map[string]int64, error) {
	marks := map[string]int64{}
	for _, h := range l.ByRole(RoleAgent) {
		m, err := l.LogMark(h.Name)
		if err != nil {
			return nil, err
		}
		marks[h.Name] = m
	}
	return marks, nil
}

// recoverFrom waits (managerFaultTimeout) until a write succeeds and every
// agent holds a session with the leader of the surviving managers, all
// nodes ready, and then that this holds for managerFaultSettle.
func (l *Lab) recoverFrom(ctx context.Context, c *client, res *ManagerFailover, old *Host,
	marks map[string]int64, probeNode string, t0 time.Time,
) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var werr error
	wg.Go(func() { werr = probeWrites(ctx, c, probeNode, t0, &res.Write) })
	var leader *Host
	err := waitFor(ctx, managerFaultTimeout, func() error {
		var err error
		if leader, err = l.Leader(ctx, res.Faulted); err != nil {
			return err
		}
		res.Leader = leader.Name
		// A new leader needs new sessions; with the same leader, the
		// sessions it had must simply stay open.
		since := marks
		if leader == old {
			since = nil
		}
		sessions, err := l.sessionsWith(ctx, c, leader, since)
		res.AgentSessions = sessions
		return err
	})
	if err != nil {
		return fmt.Errorf("after the %s of %s: %w", res.Fault, res.Faulted, err)
	}
	for _, s := range res.AgentSessions {
		res.Resessioned = max(res.Resessioned, s.At.Sub(t0))
	}
	if wg.Wait(); werr != nil {
		return werr
	}
	res.Recovered = true
	err = hold(ctx, managerFaultSettle, func() error {
		_, err := l.sessionsWith(ctx, c, leader, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("after the %s of %s, once recovered: %w", res.Fault, res.Faulted, err)
	}
	return nil
}

// sessionsWith checks that every agent's last session (established after
// its mark in since, when given) is open and with leader, and that every
// node is ready; it returns the sessions.
func (l *Lab) sessionsWith(ctx context.Context, c *client, leader *Host, since map[string]int64) ([]Session, error) {
	var problems []string
	var sessions []Session
	for _, h := range l.ByRole(RoleAgent) {
		s, ok, err := l.AgentSession(h.Name, since[h.Name])
		switch {
		case err != nil:
			return nil, err
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: no session since the fault", h.Name))
			continue
		case s.Manager != leader.ManagerAddr() || s.Ended:
			problems = append(problems, fmt.Sprintf("%s: session %s, not with the leader %s", h.Name, s, leader.Name))
		}
		sessions = append(sessions, s)
	}
	nodes, err := c.nodes(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if n.GetStatus() != "ready" {
			problems = append(problems, fmt.Sprintf("node %s is %s (%s)", n.GetHostname(), n.GetStatus(), n.GetStatusMessage()))
		}
	}
	if len(problems) > 0 {
		return sessions, errors.New(strings.Join(problems, "; "))
	}
	return sessions, nil
}

// Write probes: a new attempt every probeEvery (at most probesInFlight at
// once, each bounded by probeTimeout), so that the first moment writes are
// possible is seen even while earlier attempts hang on a manager that
// forwards to a dead leader.
const (
	probeEvery     = 100 * time.Millisecond
	probeTimeout   = 3 * time.Second
	probesInFlight = 30
)

// probeWrites sets *took to the time from t0 until a write through c
// succeeds: a label on node nodeID, which changes no task.
func probeWrites(ctx context.Context, c *client, nodeID string, t0 time.Time, took *time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, managerFaultTimeout)
	defer cancel()
	var mu sync.Mutex
	var last error
	done := make(chan time.Duration, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, probesInFlight)
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			return fmt.Errorf("no write succeeded within %s: %w", managerFaultTimeout, errors.Join(ctx.Err(), last))
		case d := <-done:
			*took = d
			cancel()
			return nil
		case slots <- struct{}{}:
		}
		wg.Go(func() {
			defer func() { <-slots }()
			actx, acancel := context.WithTimeout(ctx, probeTimeout)
			defer acancel()
			_, err := c.ctl[i%len(c.ctl)].UpdateNode(actx, &shoalpb.UpdateNodeRequest{
				Node: nodeID, LabelAdd: map[string]string{"shoal-lab.probe": fmt.Sprint(i)},
			})
			if err == nil {
				select {
				case done <- time.Since(t0):
				default:
				}
				return
			}
			mu.Lock()
			last = fmt.Errorf("%s: %w", c.hosts[i%len(c.hosts)].Name, err)
			mu.Unlock()
		})
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// hold checks that check stays nil for d, polling it.
func hold(ctx context.Context, d time.Duration, check func() error) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if err := check(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// settleAfterRestore waits until the restored manager follows the leader
// of the fault and every manager is reachable, then checks that sessions
// and nodes stay as they were for managerFaultSettle.
func (l *Lab) settleAfterRestore(ctx context.Context, c *client, res *ManagerFailover, restored *Host) error {
	leader, err := l.Host(res.Leader)
	if err != nil {
		return err
	}
	leaderID, err := l.ManagerID(leader)
	if err != nil {
		return err
	}
	err = waitFor(ctx, managerFaultTimeout, func() error {
		st, err := l.managerStatus(ctx, restored)
		if err != nil {
			return err
		}
		if st.GetLeaderId() != leaderID || st.GetAnsweredBy() == leaderID {
			return fmt.Errorf("%s sees leader %q, want %s (%s) leading", restored.Name, st.GetLeaderId(), leader.Name, leaderID)
		}
		if st, err = l.managerStatus(ctx, leader); err != nil {
			return err
		}
		for _, m := range st.GetManagers() {
			if !m.GetReachable() || !m.GetVoter() {
				return fmt.Errorf("the leader %s sees manager %s as reachable=%v voter=%v", leader.Name, m.GetId(), m.GetReachable(), m.GetVoter())
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("after restoring %s: %w", restored.Name, err)
	}
	err = hold(ctx, managerFaultSettle, func() error {
		_, err := l.sessionsWith(ctx, c, leader, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("after restoring %s: %w", restored.Name, err)
	}
	return nil
}

// managerStatus is manager h's own view of the cluster (a stale status).
func (l *Lab) managerStatus(ctx context.Context, h *Host) (*shoalpb.ClusterStatusResponse, error) {
	var skip []string
	for _, m := range l.ByRole(RoleManager) {
		if m != h {
			skip = append(skip, m.Name)
		}
	}
	c, err := l.dialManagers(false, skip...)
	if err != nil {
		return nil, err
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := c.ctl[0].ClusterStatus(ctx, &shoalpb.ClusterStatusRequest{Stale: true})
	if err != nil {
		return nil, fmt.Errorf("%s: cluster status: %w", h.Name, err)
	}
	return st, nil
}
