#!/usr/bin/env bash
# The Docker-in-Docker lab, driven end to end on one machine with nothing
# but Debian's docker.io and docker-compose:
#
#   lab-dind.sh up       build shoal-lab:dev, start a Docker engine of the lab's own, compose up
#   lab-dind.sh demo     a 6-replica service, an agent container killed, the replicas run again
#   lab-dind.sh ctl ...  shoalctl inside manager m1
#   lab-dind.sh down     remove everything up made: containers, networks, volumes, the engine, its namespace
#
# The engine (dockerd) runs in a network namespace of its own, so its
# bridges and the lab's addresses (172.29.56.0/24) never appear in the
# root namespace, and nothing here dials a lab address from outside: every
# command reaches the cluster through `docker exec`.
#
# Environment: SHOAL_DIND_DIR (state; default /var/lib/shoal-dind),
# SHOAL_DIND_NETNS (default shoal-dind), SHOAL_DIND_PROJECT (compose
# project, default shoal), SHOAL_DIND_NS (prefix of the agents' containerd
# namespaces and so of their tasks' cgroups, and of the engine's cgroup
# parent; default dind).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${SHOAL_DIND_DIR:-/var/lib/shoal-dind}
netns=${SHOAL_DIND_NETNS:-shoal-dind}
project=${SHOAL_DIND_PROJECT:-shoal}
export SHOAL_DIND_NS=${SHOAL_DIND_NS:-dind}
export DOCKER_HOST=unix://$dir/docker.sock
docker=/usr/bin/docker

log() { printf 'lab-dind: %s\n' "$*" >&2; }
compose() { docker-compose --project-directory "$here" -f "$here/docker-compose.yml" -p "$project" "$@"; }
ctl() { compose exec -T m1 shoalctl "$@"; }

need() {
	local missing=()
	command -v dockerd >/dev/null || missing+=(docker.io)
	command -v docker-compose >/dev/null || missing+=(docker-compose)
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

# start_engine runs dockerd in the lab's namespace. nsenter switches only
# the network namespace: `ip netns exec` would also remount /sys, hiding
# the cgroup hierarchies dockerd needs. No iptables (none is installed, and
# the lab needs no NAT): containers reach each other over the bridge.
start_engine() {
	mkdir -p "$dir"
	if [ -S "$dir/docker.sock" ] && "$docker" info >/dev/null 2>&1; then
		return 0
	fi
	ip netns list | grep -qw "^$netns" || ip netns add "$netns"
	ip -n "$netns" link set lo up
	nsenter --net="/run/netns/$netns" dockerd \
		--data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
		-H "unix://$dir/docker.sock" --iptables=false --ip6tables=false --ip-masq=false --bridge=none \
		--cgroup-parent "/$SHOAL_DIND_NS-docker" \
		>"$dir/dockerd.log" 2>&1 &
	local tries=0
	until "$docker" info >/dev/null 2>&1; do
		tries=$((tries + 1))
		if [ "$tries" -gt 150 ]; then
			log "dockerd did not answer within 30 s; its log:"
			tail -20 "$dir/dockerd.log" >&2
			exit 1
		fi
		sleep 0.2
	done
	log "dockerd (pid $(cat "$dir/dockerd.pid")) serves $DOCKER_HOST in namespace $netns"
}

up() {
	need
	start_engine
	DOCKER="$docker" "$here/build-image.sh" shoal-lab:dev
	compose up -d
	wait_for "3 agents ready" 120 agents_ready
	ctl node ls
}

# wait_for DESCRIPTION SECONDS CHECK...: polls CHECK every half second.
wait_for() {
	local what=$1 secs=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "not within ${secs}s: $what"
			return 1
		fi
		sleep 0.5
	done
}

agents_ready() { [ "$(ctl node ls | awk 'NR > 1 && $3 == "Ready"' | wc -l)" -eq 3 ]; }

# running_on prints the node of each running replica of service $1 (the
# table's NODE and the first word of CURRENT STATE).
running_on() { ctl service ps "$1" --filter desired-state=running | awk 'NR > 1 && $2 != "\\_" && $6 == "Running" {print $4}'; }
six_running() { [ "$(running_on web | wc -l)" -eq 6 ]; }
six_running_without() { local n; n=$(running_on web); [ "$(echo "$n" | grep -c .)" -eq 6 ] && ! echo "$n" | grep -qx "$1"; }

demo() {
	ctl service create --name web --replicas 6 --reserve-cpu 0.1 --reserve-memory 32M \
		registry:5000/shoal/busybox:latest sleep 100000 >/dev/null
	wait_for "6 replicas of web running" 90 six_running
	ctl service ps web
	local victim
	victim=$(running_on web | sort | uniq -c | sort -rn | awk 'NR == 1 {print $2}')
	log "killing agent container $victim (agent, containerd, tasks)"
	local t0=$SECONDS
	compose kill "$victim" >/dev/null 2>&1
	wait_for "6 replicas of web running without $victim" 60 six_running_without "$victim"
	log "web: 6 replicas run again on the other agents within $((SECONDS - t0 + 1)) s of the kill"
	ctl service ps web
}

down() {
	if [ -S "$dir/docker.sock" ] && "$docker" info >/dev/null 2>&1; then
		compose down -v --remove-orphans >/dev/null 2>&1 || true
		"$docker" rm -f $("$docker" ps -aq) >/dev/null 2>&1 || true
	fi
	if [ -f "$dir/dockerd.pid" ]; then
		local pid
		pid=$(cat "$dir/dockerd.pid")
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid"
			for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		fi
	fi
	# Mounts dockerd left under the state dir (overlays, namespaces), deepest first.
	awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
	ip netns list | grep -qw "^$netns" && ip netns delete "$netns"
	# The engine's containers have their cgroups under $SHOAL_DIND_NS-docker,
	# the agents' tasks under their containerd namespaces.
	for cg in /sys/fs/cgroup/*/"$SHOAL_DIND_NS"-docker /sys/fs/cgroup/*/"$SHOAL_DIND_NS"-a*; do
		[ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
	rm -rf "$dir"
	log "down: nothing of the lab is left"
}

case ${1:-} in
up) up ;;
demo) demo ;;
ctl) shift; ctl "$@" ;;
down) down ;;
*) echo "usage: $0 up|demo|ctl ARGS...|down" >&2; exit 2 ;;
esac
