package agent

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/pki"
)

// nodeIdentity is the node's ID: the certificate's CN when the agent has
// credentials (saved in the data dir like a made ID; a data dir that
// already names another node is refused, its assignments are that
// node's), else the ID kept in the data dir.
func nodeIdentity(cfg Config) (string, error) {
	return NodeIDFor(cfg.DataDir, cfg.Credentials)
}

// NodeIDFor is the node ID an agent with creds (nil: none) and dataDir
// runs as; the runtime needs it (to label containers) before the agent
// starts.
func NodeIDFor(dataDir string, creds *pki.Credentials) (string, error) {
	if creds == nil {
		return NodeID(dataDir)
	}
	id := creds.Identity().NodeID
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(dataDir, nodeIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if have := strings.TrimSpace(string(b)); have != id {
			return "", fmt.Errorf("%w: data dir %s belongs to node %s, the certificate names %s", ErrInvalidConfig, dataDir, have, id)
		}
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read node id: %w", err)
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}

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
