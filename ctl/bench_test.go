package ctl

import (
	"testing"
)

// BenchmarkServiceLs measures one whole `shoalctl service ls` against a
// fakeControl on a unix socket: flag parsing, dial, one RPC, the table.
func BenchmarkServiceLs(b *testing.B) {
	host := serveUnix(b, newFakeControl())
	for b.Loop() {
		r := runCLI(b, host, "service", "ls")
		if r.code != 0 {
			b.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	}
}

// BenchmarkServicePsFailover measures `service ps` when the first manager
// in --host has no socket: the cost of skipping a dead address.
func BenchmarkServicePsFailover(b *testing.B) {
	host := missingSocket(b) + "," + serveUnix(b, newFakeControl())
	for b.Loop() {
		r := runCLI(b, host, "service", "ps", "web")
		if r.code != 0 {
			b.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	}
}
