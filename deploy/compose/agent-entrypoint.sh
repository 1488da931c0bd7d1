#!/usr/bin/env bash
# Entrypoint of the agent containers of the Docker-in-Docker lab: each agent
# container is a whole worker host, with its own containerd. It starts
# containerd, waits for its socket, then runs shoal-agent with the
# container's arguments. When either daemon ends, the other is stopped and
# the container exits with the status of the one that ended first, so Docker
# shows a dead host as exited instead of a half-alive one.
set -euo pipefail

config=${CONTAINERD_CONFIG:-/etc/containerd/shoal-lab.toml}
socket=${CONTAINERD_SOCKET:-/run/containerd/containerd.sock}
state=${CONTAINERD_STATE:-/run/containerd}

log() { printf 'agent-entrypoint: %s\n' "$*" >&2; }

# nest_cgroups lets containerd make cgroups under the container's own
# cgroup on a cgroup v2 host, as docker's own dind image does: v2 allows
# controllers in a child cgroup only when its parent holds no process, so
# every process of the container's root cgroup moves to a leaf "init" first.
# It runs only in a private cgroup namespace (compose: cgroup: private),
# where /sys/fs/cgroup is the container's cgroup and not the host's.
nest_cgroups() {
	local root=/sys/fs/cgroup
	if [ ! -f "$root/cgroup.controllers" ]; then
		return 0 # cgroup v1: each controller is its own hierarchy, nothing to do
	fi
	if [ "$(cat /proc/self/cgroup)" != "0::/" ]; then
		log "not in a private cgroup namespace ($(cat /proc/self/cgroup)): leaving cgroups alone; set 'cgroup: private'"
		return 0
	fi
	mkdir -p "$root/init"
	# A process may exit between the read and the move (xargs itself): ignore that.
	xargs -rn1 <"$root/cgroup.procs" >"$root/init/cgroup.procs" 2>/dev/null || true
	sed -e 's/ / +/g' -e 's/^/+/' <"$root/cgroup.controllers" >"$root/cgroup.subtree_control"
}

# A (re)started container is a host that booted: nothing of the previous
# run's containerd state (sockets, shim state, task bundles) is alive, as
# after a reboot clears /run. Images, snapshots and container records stay
# on the volume, and the agent adopts or removes its containers from there.
start_containerd() {
	rm -rf "${state:?}"
	mkdir -p "$state"
	containerd --config "$config" &
	containerd_pid=$!
	local tries=0
	until [ -S "$socket" ]; do
		if ! kill -0 "$containerd_pid" 2>/dev/null; then
			wait "$containerd_pid" || true
			log "containerd exited before opening $socket"
			exit 1
		fi
		tries=$((tries + 1))
		if [ "$tries" -gt 200 ]; then
			log "containerd did not open $socket within 20 s"
			exit 1
		fi
		sleep 0.1
	done
	log "containerd (pid $containerd_pid) serves $socket"
}

# stop ends the agent first (it announces that it leaves), then containerd.
stop() {
	if [ -n "${agent_pid:-}" ] && kill -0 "$agent_pid" 2>/dev/null; then
		log "stopping shoal-agent"
		kill -TERM "$agent_pid" 2>/dev/null || true
		wait "$agent_pid" 2>/dev/null || true
	fi
	if kill -0 "$containerd_pid" 2>/dev/null; then
		log "stopping containerd"
		kill -TERM "$containerd_pid" 2>/dev/null || true
		wait "$containerd_pid" 2>/dev/null || true
	fi
}

nest_cgroups
start_containerd
trap 'stop; exit 143' TERM INT
args=("$@")
# The worker join token, on the first start (a node with a certificate in
# its data dir ignores it).
if [ -n "${SHOAL_TOKEN_FILE:-}" ] && [ -s "$SHOAL_TOKEN_FILE" ]; then
	args+=(--token "$(cat "$SHOAL_TOKEN_FILE")")
fi
shoal-agent "${args[@]}" &
agent_pid=$!
log "shoal-agent (pid $agent_pid) started"

status=0
wait -n "$agent_pid" "$containerd_pid" || status=$?
if ! kill -0 "$agent_pid" 2>/dev/null; then
	log "shoal-agent exited with status $status"
else
	log "containerd exited with status $status"
fi
stop
exit "$status"
