package managertest

import (
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/pki"
)

// HostCredentials returns the credentials the agent on manager i's host
// presents: the manager's own, read from its data dir without writing it
// back (shoal-agent --manager-data-dir does the same), so that the host is
// one node with the manager's node ID. Give the agent
// SharedCredentialsDir: DataDir(i) to follow the manager's renewals. Nil
// in plaintext.
func (c *Cluster) HostCredentials(i int) *pki.Credentials {
	c.t.Helper()
	if c.opts.Plaintext {
		return nil
	}
	creds, err := manager.HostCredentials(c.DataDir(i))
	if err != nil {
		c.t.Fatalf("credentials of manager %d's host: %v", i, err)
	}
	return creds
}
