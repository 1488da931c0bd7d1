package managertest

import (
	"fmt"

	"github.com/shoal-sched/shoal/pki"
)

// AddStandby starts one more manager that joins through manager via as a
// standby (a Raft non-voter: its host's node is a worker until promoted),
// waits until every manager records it, and returns its index.
func (c *Cluster) AddStandby(via int) int {
	c.t.Helper()
	i := len(c.members)
	c.members = append(c.members, c.newMember(i))
	c.members[i].cfg.Join = c.AdvertiseAddr(via)
	c.members[i].cfg.Token = c.JoinToken(pki.RoleManager)
	c.members[i].cfg.Standby = true
	c.start(i, nil)
	id := c.Manager(i).ID()
	c.WaitFor(c.opts.StartTimeout, func() error {
		for j := range c.members {
			m := c.Manager(j)
			if m == nil || m.Raft() == nil {
				continue
			}
			rec, ok := m.Raft().State().Read().Manager(id)
			if !ok || !rec.NonVoter || rec.Addr != c.AdvertiseAddr(i) {
				return fmt.Errorf("manager %d does not record standby %d yet (%+v)", j, i, rec)
			}
		}
		return nil
	})
	return i
}

// Voters counts the voters in the leader's Raft configuration.
func (c *Cluster) Voters() (int, error) {
	l := c.Leader()
	if l < 0 {
		return 0, fmt.Errorf("no leader")
	}
	members, err := c.Manager(l).Raft().Members()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range members {
		if m.Voter {
			n++
		}
	}
	return n, nil
}
