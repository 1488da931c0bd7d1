#!/usr/bin/env bash
# make bench: the benchmarks that carry the figures the project aims at, each
# beside its baseline in the same run, with -benchmem. The report goes to
# stdout and to bench.txt. BENCH_TIME scales the repetitions (default 1).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench.txt}
: > "$out"
run() { # package regexp benchtime
	echo "== go test -run '^\$' -bench '$2' -benchtime $3 -benchmem $1" | tee -a "$out"
	go test -run '^$' -bench "$2" -benchtime "$3" -benchmem "$1" 2>&1 | grep -E '^(Benchmark|ok|FAIL|---)' | tee -a "$out"
}
# Scheduler: indexed placement beside a naive full scan of every node.
run ./scheduler/ 'BenchmarkSchedule(Naive)?/nodes=1000/tasks=10000$' 3x
run ./scheduler/ 'BenchmarkSchedule/nodes=10000/tasks=100000$' 3x
# Raft store: writes/s with 16 writers (fsync on), leader failover, 10k assignments.
run ./raftstore/ 'BenchmarkApply$|BenchmarkAssign10k' 2s
run ./raftstore/ 'BenchmarkFailover' 1x
# Managers through the gRPC control API: failover and writes/s.
run ./manager/ 'BenchmarkLeaderFailover' 1x
run ./manager/ 'BenchmarkControlWrites' 4000x
# Orchestrator + scheduler: 1,000 nodes, 10,000 replicas, create -> all assigned.
run ./manager/orchestrator/ 'BenchmarkCreateToAssigned' 3x
# Gossip failure detection (10 kills).
run ./membership/ 'BenchmarkFailureDetection' 10x
# Agents: kill -> replicas running again (fake runtime); 1,000 agents x 10,000 replicas.
run ./manager/dispatcher/ 'BenchmarkAgentFailover' 10x
run ./cmd/agent/ 'BenchmarkManyAgents$' 1x
# Rollouts: 30 replicas by 5, tasks up 1 s after start (x-waits: total over 6 x 1 s);
# first failed task of a bad update -> rollback started.
run ./ctl/ 'BenchmarkRollingUpdate30$|BenchmarkRollbackReaction$' 2x
# containerd: create+start, run to exit (needs root and containerd).
run ./agent/containerd/ 'BenchmarkCreateStart|BenchmarkRunToExit' 10x
echo "report: $out"
