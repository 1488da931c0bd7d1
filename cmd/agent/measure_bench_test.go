package main

// What the scale benchmarks measure besides time: the processes' CPU,
// heap and resident size, and profiles of the agents' side.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// gcLine matches a gctrace line: "gc 12 @1.2s 3%: ... 40->41->20 MB, ..."
// (heap at GC start, at GC end, and live heap after it).
var gcLine = regexp.MustCompile(`gc \d+ @[^:]*:.* (\d+)->(\d+)->(\d+) MB`)

// liveHeapMiB returns the live heap after the last GC the process traced.
func liveHeapMiB(logPath string) (float64, error) {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return 0, err
	}
	m := gcLine.FindAllStringSubmatch(string(b), -1)
	if len(m) == 0 {
		return 0, fmt.Errorf("no gctrace line in %s", logPath)
	}
	mb, err := strconv.ParseFloat(m[len(m)-1][3], 64)
	return mb, err
}

// rssMiB returns a process's resident set size.
func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// cpuTaken is the CPU this process and each manager process have used.
type cpuTaken struct {
	self  time.Duration
	procs []time.Duration
}

func takeCPU(b *testing.B, procs []*proc) cpuTaken {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	c := cpuTaken{self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	for _, p := range procs {
		d, err := procCPU(p.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		c.procs = append(c.procs, d)
	}
	return c
}

// since is the CPU used from before to c.
func (c cpuTaken) since(before cpuTaken) cpuTaken {
	out := cpuTaken{self: c.self - before.self}
	for i := range c.procs {
		out.procs = append(out.procs, c.procs[i]-before.procs[i])
	}
	return out
}

func (c cpuTaken) managers() time.Duration {
	var sum time.Duration
	for _, d := range c.procs {
		sum += d
	}
	return sum
}

// cpuShare is the share of one core a process used over the next d.
func cpuShare(b *testing.B, pid int, d time.Duration) (float64, error) {
	before, err := procCPU(pid)
	if err != nil {
		return 0, err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.Context().Done():
		return 0, b.Context().Err()
	}
	after, err := procCPU(pid)
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(d), nil
}

// profileSelf writes this process's CPU profile (the agents' side) into
// dir until the returned func is called, when dir is set.
func profileSelf(b *testing.B, dir string) (stop func()) {
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, "agents-cpu.pprof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}
}

// traceSelf writes an execution trace of this process (the agents) for d.
func traceSelf(b *testing.B, out string, d time.Duration) {
	f, err := os.Create(out)
	if err != nil {
		b.Error(err)
		return
	}
	defer f.Close()
	if err := trace.Start(f); err != nil {
		b.Error(err)
		return
	}
	// The trace covers d (or less, if the benchmark ends first).
	select {
	case <-time.After(d):
	case <-b.Context().Done():
	}
	trace.Stop()
}

// dumpGoroutines writes this process's goroutines (the agents') to out.
func dumpGoroutines(b *testing.B, out string) {
	f, err := os.Create(out)
	if err != nil {
		b.Error(err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("goroutine").WriteTo(f, 1); err != nil {
		b.Error(err)
	}
}
