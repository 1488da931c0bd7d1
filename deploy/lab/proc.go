package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a daemon the lab started, remembered by PID and start time so a
// later `lab down` ends exactly that process and never a stranger that
// reused its PID.
type Proc struct {
	PID   int      `json:"pid"`
	Start uint64   `json:"start"` // start time in clock ticks since boot (/proc/PID/stat field 22)
	Args  []string `json:"args"`
	Log   string   `json:"log"`
}

// startInNetns starts args inside network namespace ns, detached in its own
// session so it outlives the lab command, with output to logPath.
func startInNetns(ns, logPath string, args ...string) (Proc, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Proc{}, err
	}
	defer logFile.Close()
	// nsenter joins only the network namespace and execs the command, so
	// the PID we get is the daemon's. (`ip netns exec` would also remount
	// /sys in a new mount namespace, hiding the cgroup mounts runc needs.)
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + ns, "--"}, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Proc{}, fmt.Errorf("start %s in %s: %w", args[0], ns, err)
	}
	pid := cmd.Process.Pid
	// Reap it in the background while this command lives; once the lab
	// command exits, init adopts the daemon.
	go func() { _ = cmd.Wait() }()
	start, _ := procStart(pid)
	return Proc{PID: pid, Start: start, Args: args, Log: logPath}, nil
}

// procStart reads a process's start time, which with the PID identifies it.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces: split after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// Alive reports whether p is still the process the lab started.
func (p Proc) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	start, err := procStart(p.PID)
	if err != nil || (p.Start != 0 && start != p.Start) {
		return false
	}
	// A zombie is dead for our purposes.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err == nil {
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z") {
			return false
		}
	}
	return true
}

// Signal sends sig to p if it is still the process the lab started.
func (p Proc) Signal(sig syscall.Signal) error {
	if !p.Alive() {
		return nil
	}
	if err := syscall.Kill(p.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %d to pid %d: %w", sig, p.PID, err)
	}
	return nil
}

// Stop sends SIGTERM, waits up to grace, then SIGKILL.
func (p Proc) Stop(grace time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	deadline := time.Now().Add(grace)
	for p.Alive() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return p.Signal(syscall.SIGKILL)
}

// killNetns sends SIGKILL to every process in a network namespace and waits
// (bounded) until they are gone. It returns the PIDs it killed.
func killNetns(ns string) []int {
	var killed []int
	for round := 0; round < 50; round++ {
		pids := netnsPIDs(ns)
		if len(pids) == 0 {
			return killed
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil && round == 0 {
				killed = append(killed, pid)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return killed
}
