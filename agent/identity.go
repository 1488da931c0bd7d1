package agent

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/shoal-sched/shoal/api"
)

// NodeID returns the node ID kept in dataDir, making the directory and the
// ID on first use. The runtime needs it (to label containers) before the
// agent starts.
func NodeID(dataDir string) (string, error) {
	if dataDir == "" {
		return "", fmt.Errorf("%w: data dir is empty", ErrInvalidConfig)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	return loadNodeID(dataDir)
}

// loadNodeID returns the node ID kept in dataDir, making one on first use:
// a node keeps its identity across restarts, so the leader recognises it.
func loadNodeID(dataDir string) (string, error) {
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

// detectResources returns what the host offers: every CPU and the total
// memory from /proc/meminfo.
func detectResources() (api.Resources, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return api.Resources{}, fmt.Errorf("detect memory: %w (set the memory explicitly)", err)
	}
	mem, err := parseMemTotal(b)
	if err != nil {
		return api.Resources{}, err
	}
	return api.Resources{NanoCPUs: int64(runtime.NumCPU()) * 1e9, MemoryBytes: mem}, nil
}

// parseMemTotal reads the MemTotal line ("MemTotal:  16314856 kB").
func parseMemTotal(meminfo []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "MemTotal:" {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || kb <= 0 {
			return 0, fmt.Errorf("detect memory: MemTotal %q is not a positive number", f[1])
		}
		if len(f) >= 3 && f[2] != "kB" {
			return 0, fmt.Errorf("detect memory: MemTotal unit %q, want kB", f[2])
		}
		return kb * 1024, nil
	}
	return 0, errors.New("detect memory: no MemTotal line in /proc/meminfo")
}
