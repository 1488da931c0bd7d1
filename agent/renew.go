package agent

import (
	"context"

	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/join"
)

// renewCertificate keeps the node's certificate fresh at whichever
// managers the agent knows of; the credentials are swapped in place, so
// the session is not dropped.
func (a *Agent) renewCertificate(ctx context.Context) error {
	r := &pki.Renewer{
		Creds:  a.cfg.Credentials,
		Issuer: &join.Remote{Creds: a.cfg.Credentials, Managers: a.candidates},
		Logger: a.cfg.Logger,
	}
	return r.Run(ctx)
}
