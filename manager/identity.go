package manager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/ca"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/join"
)

// A manager's identity is its certificate, kept in its data dir (ca.pem,
// cert.pem, key.pem): the CN is its node ID, which is its Raft member id.
// This file is the one place it is read or made.

const (
	// idFile is where managers before certificates kept their id; a data
	// dir that has one keeps that id when it bootstraps a CA.
	idFile = "manager-id"
	// bootstrapCAFile holds the CA a bootstrapping manager made until the
	// first leader has committed it to Raft (0600: it holds the root key).
	bootstrapCAFile = "ca-bootstrap.json"
)

// loadCredentials returns the manager's credentials: those in the data
// dir (a restart), or, on the first start, a new cluster's CA and this
// manager's certificate (no --join), or a certificate traded for --token
// at the --join manager.
func loadCredentials(ctx context.Context, cfg Config) (*pki.Credentials, error) {
	creds, err := pki.LoadCredentials(cfg.DataDir)
	switch {
	case err == nil:
		if id := creds.Identity(); id.Role != pki.RoleManager {
			return nil, fmt.Errorf("%w: the certificate in %s is a %s's (node %s), not a manager's: give a manager its own data dir", ErrConfig, cfg.DataDir, id.Role, id.NodeID)
		}
		return creds, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	case cfg.Join == "":
		return bootstrapCredentials(cfg.DataDir, time.Now())
	case cfg.Token == "":
		return nil, fmt.Errorf("%w: joining %s needs the manager join token: give --token (shoalctl cluster join-token manager prints it)", ErrConfig, cfg.Join)
	}
	return join.Obtain(ctx, join.Options{
		Dir: cfg.DataDir, Managers: []string{cfg.Join}, Token: cfg.Token, Role: pki.RoleManager,
		Timeout: cfg.JoinTimeout, Logger: cfg.Logger,
	})
}

// bootstrapCredentials makes a new cluster: its ID, root CA and join
// tokens (kept in bootstrapCAFile until the first leader commits them),
// and this manager's certificate. The CA file is written before the
// credentials: a crash in between leaves no credentials, and the next
// start makes everything again.
func bootstrapCredentials(dir string, now time.Time) (*pki.Credentials, error) {
	id, err := legacyID(dir)
	if err != nil {
		return nil, err
	}
	root, err := pki.NewRootCA(randomID(), now)
	if err != nil {
		return nil, err
	}
	rec, err := ca.NewClusterCA(root)
	if err != nil {
		return nil, err
	}
	keyPEM, csr, err := pki.NewKeyAndCSR()
	if err != nil {
		return nil, err
	}
	cert, err := ca.Issue(rec, api.ClusterSettings{}, csr, pki.Identity{NodeID: id, Role: pki.RoleManager}, 0, now)
	if err != nil {
		return nil, err
	}
	creds, err := pki.NewCredentials(cert, keyPEM, rec.RootCert)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("bootstrap CA: %w", err)
	}
	if err := writeFile0600(filepath.Join(dir, bootstrapCAFile), b); err != nil {
		return nil, err
	}
	if err := creds.SaveTo(dir); err != nil {
		return nil, err
	}
	return creds, nil
}

// pendingCA reads the CA this manager made at bootstrap and has not seen
// committed yet (ok false: none).
func pendingCA(dir string) (api.ClusterCA, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, bootstrapCAFile))
	if errors.Is(err, fs.ErrNotExist) {
		return api.ClusterCA{}, false, nil
	}
	if err != nil {
		return api.ClusterCA{}, false, fmt.Errorf("bootstrap CA: %w", err)
	}
	var rec api.ClusterCA
	if err := json.Unmarshal(b, &rec); err != nil {
		return api.ClusterCA{}, false, fmt.Errorf("bootstrap CA %s: %w", bootstrapCAFile, err)
	}
	return rec, true, nil
}

// dropPendingCA removes the bootstrap CA file once Raft holds the CA.
func dropPendingCA(dir string) error {
	err := os.Remove(filepath.Join(dir, bootstrapCAFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove bootstrap CA: %w", err)
	}
	return nil
}

// legacyID returns the id an older data dir recorded (its Raft state
// knows this member by it), or a new node ID.
func legacyID(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, idFile))
	if errors.Is(err, fs.ErrNotExist) {
		return ca.NewNodeID(), nil
	}
	if err != nil {
		return "", fmt.Errorf("read manager id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("manager id file %s is empty; restore it or start with a new data dir", filepath.Join(dir, idFile))
	}
	return id, nil
}

func writeFile0600(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// randomID returns 25 random lower-case hex characters.
func randomID() string {
	var b [13]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("manager: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b[:])[:25]
}

// HostCredentials returns the credentials of the manager whose data dir is
// dataDir, for the agent on the manager's host: the host is one node, named
// by the manager's node ID, and the dispatcher takes a session's node ID
// from its certificate only, so the agent presents the manager's. They are
// read only (pki.ReadCredentials): the manager renews them and the agent
// reloads the files, never writes them. The certificate's manager role
// grants the agent nothing more than a worker's: authz lets it hold a
// session, and its node's role follows the manager's Raft membership in
// the store, not the certificate.
func HostCredentials(dataDir string) (*pki.Credentials, error) {
	creds, err := pki.ReadCredentials(dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no manager certificate in %s: start the manager with --data-dir %s first: %w", dataDir, dataDir, err)
	}
	if err != nil {
		return nil, err
	}
	if id := creds.Identity(); id.Role != pki.RoleManager {
		return nil, fmt.Errorf("%w: the certificate in %s is a %s's (node %s), not a manager's: give the manager's data dir", ErrConfig, dataDir, id.Role, id.NodeID)
	}
	return creds, nil
}

// ReadID returns the node ID of the manager whose data dir is dataDir
// (its certificate's CN), without making one. The lab reads it to name
// Raft members.
func ReadID(dataDir string) (string, error) {
	creds, err := HostCredentials(dataDir)
	if err != nil {
		return "", err
	}
	return creds.Identity().NodeID, nil
}
