package agent

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/join"
)

// renewCertificate keeps the node's certificate fresh at whichever
// managers the agent knows of; the credentials are swapped in place, so
// the session is not dropped.
func (a *Agent) renewCertificate(ctx context.Context, conns *connCache) error {
	r := &pki.Renewer{
		Creds: a.cfg.Credentials,
		Issuer: &join.Remote{Creds: a.cfg.Credentials, Managers: a.candidates,
			Conn: func(addr string) (grpc.ClientConnInterface, error) { return conns.get(addr) }},
		StatusInterval: a.cfg.CertStatusInterval,
		Logger:         a.cfg.Logger,
	}
	return r.Run(ctx)
}

// reloadCredentials follows credentials another process keeps (the
// manager on this host renews the certificate the agent presents): it
// reads their dir every CertStatusInterval and swaps in what changed. A
// failed read (the manager is in the middle of writing) keeps the current
// set until the next one.
func (a *Agent) reloadCredentials(ctx context.Context) error {
	t := time.NewTicker(cmp.Or(a.cfg.CertStatusInterval, time.Minute))
	defer t.Stop()
	dir := a.cfg.SharedCredentialsDir
	failed := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		changed, err := a.cfg.Credentials.Reload(dir)
		switch {
		case err != nil:
			// One failure is a write caught half way; more are worth a
			// look (the dir's certificate will not be followed).
			failed++
			lvl := slog.LevelDebug
			if failed > 1 {
				lvl = slog.LevelWarn
			}
			a.log.Log(ctx, lvl, "credentials not reloaded; trying again later", "dir", dir, "err", err)
			continue
		case changed:
			a.log.Info("reloaded the certificate the manager renewed", "dir", dir,
				"not_after", a.cfg.Credentials.Leaf().NotAfter)
		}
		failed = 0
	}
}
