#!/usr/bin/env bash
# make bench-watch: BenchmarkWatch (three shoal-manager processes, 50
# fake-runtime agents, 10,000 replicas) and a short report of its figures.
# wait_cpu: the leader's CPU over 10 s while 10 clients wait by Watch
# (their snapshot already read) beside 10 clients polling the old way (one
# round already done), on a cluster where nothing is being changed, each
# window less an idle one (watch/poll_net), and from a CPU profile of the
# leader over each window the CPU under the Watch handler beside that under
# the unary calls (watch/poll_rpc, target <= 0.05). fanout: the delay from a change's commit to
# each of 100 watchers during a 1,000-replica scale (target: max <= 200 ms).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench-watch.txt}
cmd=(go test -run '^$' -bench '^BenchmarkWatch$' -benchtime "${BENCH_TIME:-1x}" -timeout 20m ./cmd/agent/)
echo "== ${cmd[*]}" | tee "$out"
"${cmd[@]}" 2>&1 | grep -E '^(Benchmark|ok|FAIL|---)|_test\.go:' | tee -a "$out"
awk '
/wait_cpu/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "watch_cpu_ms") w = $i; if ($(i+1) == "poll_cpu_ms") p = $i; if ($(i+1) == "idle_cpu_ms") d = $i; if ($(i+1) == "watch/poll_net") r = $i; if ($(i+1) == "watch_rpc_ms") wr = $i; if ($(i+1) == "poll_rpc_ms") pr = $i; if ($(i+1) == "watch/poll_rpc") rr = $i } }
/fanout/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "max_ms") m = $i; if ($(i+1) == "median_ms") md = $i; if ($(i+1) == "p99_ms") q = $i; if ($(i+1) == "resyncs") z = $i } }
END {
	printf "leader CPU per 10 s: idle %s ms, 10 watchers %s ms, 10 pollers %s ms; net ratio %s\n", d, w, p, r
	printf "the calls themselves (CPU profile): 10 watchers %s ms, 10 pollers %s ms; ratio %s (target <= 0.05; a watchers figure below 10 ms counts as 10)\n", wr, pr, rr
	printf "fan-out, 100 watchers, +1,000 replicas: last change seen after median %s ms, max %s ms, p99 %s ms (target <= 200); %s resyncs\n", md, m, q, z
}' "$out" | tee -a "$out"
