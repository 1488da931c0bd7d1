package manager

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A manager's identity is its Raft member id, kept in its data dir: this
// file is the one place it is read or made.

const idFile = "manager-id"

// loadID returns the manager's id from the data dir, making and saving a
// new one on the first start. The id is the Raft member id, so it must
// survive restarts.
func loadID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, idFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if id == "" {
			return "", fmt.Errorf("manager id file %s is empty; restore it or start with a new data dir", path)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read manager id: %w", err)
	}
	id := randomID()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write manager id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write manager id: %w", err)
	}
	return id, nil
}

// randomID returns 25 random lower-case hex characters.
func randomID() string {
	var b [13]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("manager: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b[:])[:25]
}

// ReadID returns the id of the manager whose data dir is dataDir, without
// making one: an agent on the manager's host takes it as its node id, so
// that the host is one node whose role follows the manager's membership.
func ReadID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, idFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no manager id in %s: start the manager with --data-dir %s first", dataDir, dataDir)
	}
	if err != nil {
		return "", fmt.Errorf("read manager id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("manager id file %s is empty", path)
	}
	return id, nil
}
