package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/shoal-sched/shoal/api"
)

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
