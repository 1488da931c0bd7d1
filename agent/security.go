package agent

import (
	"crypto/tls"

	"github.com/shoal-sched/shoal/authz"
)

// clientTLS is the configuration of the agent's calls to managers (nil in
// plaintext).
func (a *Agent) clientTLS() *tls.Config {
	if a.cfg.Credentials == nil {
		return nil
	}
	return a.cfg.Credentials.ClientTLS()
}

// serverTLS is the configuration of the Agent service (nil in plaintext).
func (a *Agent) serverTLS() *tls.Config {
	if a.cfg.Credentials == nil {
		return nil
	}
	return a.cfg.Credentials.ServerTLS()
}

// guard lets only managers of the node's cluster call the Agent service.
func (a *Agent) guard() *authz.Guard {
	cluster := ""
	if a.cfg.Credentials != nil {
		cluster = a.cfg.Credentials.Identity().ClusterID
	}
	return authz.NewGuard(cluster, a.cfg.Logger)
}
