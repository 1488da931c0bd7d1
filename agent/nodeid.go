package agent

import (
	"fmt"
	"os"
)

// LoadNodeID returns the node ID kept in dataDir, making the dir and the ID
// on first use. The runtime needs it (it labels containers with their node)
// before the agent itself is built.
func LoadNodeID(dataDir string) (string, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("data dir %q: %w", dataDir, err)
	}
	return loadNodeID(dataDir)
}
