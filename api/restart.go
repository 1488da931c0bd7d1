package api

import (
	"fmt"
	"time"
)

// MaxRestartHold bounds how long a restarting node keeps its tasks without
// an agent. Longer than that, an operator means maintenance: drain the node.
const MaxRestartHold = time.Hour

// ErrRestartHold is wrapped by CheckRestartHold's errors.
var ErrRestartHold = fmt.Errorf("invalid restart hold")

// CheckRestartHold checks how long an agent asks the leader to hold its
// node while it restarts.
func CheckRestartHold(d time.Duration) error {
	if d <= 0 || d > MaxRestartHold {
		return fmt.Errorf("%w: %s: want more than 0s and at most %s (drain the node for longer maintenance)",
			ErrRestartHold, d, MaxRestartHold)
	}
	return nil
}
