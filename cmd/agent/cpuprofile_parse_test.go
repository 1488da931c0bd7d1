package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"runtime/pprof"
	"testing"
	"time"
)

//go:noinline
func spinForProfile(d time.Duration) int {
	n := 0
	for start := time.Now(); time.Since(start) < d; n++ {
	}
	return n
}

// TestParseCPUProfile: a profile of this process over a spin finds the
// spin's CPU under its function, and none under a function not called.
func TestParseCPUProfile(t *testing.T) {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skipf("a CPU profile is already running: %v", err)
	}
	spinForProfile(500 * time.Millisecond)
	pprof.StopCPUProfile()
	z, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseCPUProfile(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.under([]string{"spinForProfile"}); got < 100*time.Millisecond {
		t.Errorf("CPU under spinForProfile: %v, want most of the 500 ms spin", got)
	}
	if got := p.under([]string{"spinForProfile"}, "noSuchFunction"); got != 0 {
		t.Errorf("CPU under spinForProfile and noSuchFunction: %v, want 0", got)
	}
}
