#!/usr/bin/env bash
# make soak: 3 managers and 20 agents (fake runtime) on loopback for
# SOAK_SECONDS (default 300) while two busy loops keep both cores saturated;
# reports every node the leader declared down (there should be none) and
# every Raft election after the first. Everything it starts it ends by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SOAK_SECONDS:-300}
agents=${SOAK_AGENTS:-20}
dir=$(mktemp -d /tmp/shoal-soak.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 1
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
make -s build >/dev/null
base=$((20000 + RANDOM % 20000))
m() { echo "127.0.0.1:$((base + $1))"; }
# The managers are driven through the first one's control socket; TCP takes
# mutual TLS.
ctl() { bin/shoalctl --host "unix://$dir/m0.sock" "$@"; }
token() { # waits until the first manager has recorded the CA
	for _ in $(seq 1 50); do ctl cluster join-token -q "$1" 2>/dev/null && return; sleep 0.2; done
	echo "soak: no $1 join token from the first manager" >&2; return 1
}
for i in 0 1 2; do
	join=()
	[ "$i" -gt 0 ] && join=(--join "$(m 0)" --token "$(token manager)")
	bin/shoal-manager --data-dir "$dir/m$i" --socket "$dir/m$i.sock" --addr "$(m $((i * 10)))" \
		--raft-addr "$(m $((i * 10 + 1)))" --gossip-addr "$(m $((i * 10 + 2)))" "${join[@]}" >"$dir/m$i.log" 2>&1 &
	pids+=($!)
	sleep 1
done
wtoken=$(token worker)
for i in $(seq 1 "$agents"); do
	bin/shoal-agent --runtime fake --data-dir "$dir/a$i" --hostname "a$i" --join "$(m 0),$(m 10),$(m 20)" --token "$wtoken" \
		--advertise-addr "$(m $((100 + i * 2)))" --gossip-addr "$(m $((101 + i * 2)))" --cpus 2 --memory 2G >"$dir/a$i.log" 2>&1 &
	pids+=($!)
done
sleep 3
export SHOAL_HOST="unix://$dir/m0.sock,unix://$dir/m1.sock,unix://$dir/m2.sock"
bin/shoalctl service create --detach --name soak --replicas 40 busybox >/dev/null
ready=$(bin/shoalctl node ls 2>/dev/null | grep -c Ready || true)
echo "soak: 3 managers, $agents agents ($ready ready), 40 replicas; both cores busy for ${secs}s"
for _ in 1 2; do (while :; do :; done) & pids+=($!); done
sleep "$secs"
downs=$(cat "$dir"/m*.log | grep -c '"node down"\|msg="node down"' || true)
elections=$(cat "$dir"/m*.log | grep -c "leading: checking node liveness" || true)
bin/shoalctl node ls
cat "$dir"/m*.log | grep 'msg="node down"' || true
echo "soak: nodes declared down: $downs; leadership changes after the first: $((elections > 0 ? elections - 1 : 0))"
[ "$downs" -eq 0 ]
