package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoal-sched/shoal/pki"
)

// nodeIDFile holds the node's ID in its data dir.
const nodeIDFile = "node-id"

// NodeID returns the node ID kept in dataDir: the CN of the node's
// certificate when it has joined with a token (pki/join.Obtain writes it),
// otherwise an ID recorded in the node-id file, made on first use (nodes
// run without a CA, in tests of the layers above). A node keeps its
// identity across restarts, so the leader recognises it; the runtime needs
// it (to label containers) before the agent starts.
func NodeID(dataDir string) (string, error) {
	if dataDir == "" {
		return "", fmt.Errorf("%w: data dir is empty", ErrInvalidConfig)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	creds, err := pki.LoadCredentials(dataDir)
	if err == nil {
		return creds.Identity().NodeID, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	path := filepath.Join(dataDir, nodeIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if !validNodeID(id) {
			return "", fmt.Errorf("node id file %s holds %q, not a node id (32 hex digits)", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("make node id: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}

func validNodeID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}
