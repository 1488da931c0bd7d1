#!/usr/bin/env bash
# Provisions one VM of the Vagrant layout (run as root by `vagrant up` and
# `vagrant provision`; the Vagrantfile passes the settings as environment):
# installs the packages, the binaries from the synced bin/, the systemd units
# of deploy/systemd with this VM's addresses, and waits until the VM is part
# of the cluster. Running it again updates the binaries and restarts the
# daemons.
set -euo pipefail

: "${SHOAL_ROLE:?manager or worker}" "${SHOAL_NAME:?}" "${SHOAL_IP:?}" "${SHOAL_MANAGERS:?}"
: "${SHOAL_MANAGER_PORT:=7000}" "${SHOAL_RAFT_PORT:=7001}" "${SHOAL_GOSSIP_PORT:=7946}" "${SHOAL_AGENT_PORT:=7010}"
: "${SHOAL_JOIN:=}" "${SHOAL_REGISTRY:=}" "${SHOAL_RUN_REGISTRY:=no}" "${SHOAL_SRC:=/shoal}"
# What the host fetched from the bootstrap manager (see Handoff in the
# Vagrantfile): manager-token, worker-token, operator/{ca,cert,key}.pem.
: "${SHOAL_HANDOFF:=$SHOAL_SRC/deploy/vagrant/.cluster}"

log() { printf '%s: %s\n' "$SHOAL_NAME" "$*"; }
die() { printf '%s: %s\n' "$SHOAL_NAME" "$*" >&2; exit 1; }

# Build on the host, not here: the VMs need no Go toolchain and get exactly
# the binaries the host tested.
binaries=(shoal-manager shoal-agent shoalctl)
if [ "$SHOAL_RUN_REGISTRY" = yes ]; then
	binaries+=(shoal-lab-registry)
fi
for b in "${binaries[@]}"; do
	[ -x "$SHOAL_SRC/bin/$b" ] || die "$SHOAL_SRC/bin/$b is missing: run 'make build' in the repository on the host (GOOS=linux GOARCH=amd64 on a Mac), then 'vagrant rsync' and 'vagrant provision'"
done
"$SHOAL_SRC/bin/shoalctl" --help >/dev/null 2>&1 ||
	die "$SHOAL_SRC/bin/shoalctl does not run here: build for linux/$(dpkg --print-architecture) (GOOS=linux GOARCH=$(dpkg --print-architecture) make build)"

packages=(jq)
case "$SHOAL_ROLE" in
worker) packages+=(containerd runc) ;;
manager) ;;
*) die "SHOAL_ROLE=$SHOAL_ROLE: want manager or worker" ;;
esac
if [ "$SHOAL_RUN_REGISTRY" = yes ]; then
	# The registry builds its busybox image from Debian's static busybox.
	packages+=(busybox-static)
fi
log "installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

for b in "${binaries[@]}"; do
	install -m 0755 "$SHOAL_SRC/bin/$b" /usr/local/bin/
done

# handoff NAME: prints a file the bootstrap manager handed out, or stops with
# what to do when the host did not fetch it.
handoff() {
	local f="$SHOAL_HANDOFF/$1"
	[ -s "$f" ] || die "$f is missing: the host fetches it from m1 after 'vagrant up m1' (the Vagrantfile's Handoff); run 'vagrant up m1' (or 'vagrant provision m1'), then 'vagrant rsync $SHOAL_NAME' and 'vagrant provision $SHOAL_NAME'"
	tr -d '[:space:]' <"$f"
}

# Over TCP every call is mutual TLS: on a worker, shoalctl (as root) uses the
# operator certificate the host fetched; on a manager, root's shoalctl uses
# the control socket, its default, and needs neither.
if [ "$SHOAL_ROLE" = worker ]; then
	handoff operator/cert.pem >/dev/null
	export SHOAL_HOST="$SHOAL_MANAGERS" SHOAL_CERT_PATH="$SHOAL_HANDOFF/operator"
fi

# wait_for SECONDS COMMAND...: polls COMMAND every second, SECONDS times.
wait_for() {
	local secs=$1
	shift
	for _ in $(seq "$secs"); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 1
	done
	return 1
}

manager_joined() {
	shoalctl --host unix:///var/lib/shoal/manager/control.sock cluster status -o json |
		jq -e --arg raft "$SHOAL_IP:$SHOAL_RAFT_PORT" \
			'.leader_id != "" and any(.managers[]; .raft_addr == $raft and .voter)'
}

node_ready() {
	shoalctl node ls -o json |
		jq -e --arg h "$SHOAL_NAME" 'any(.[]; .node.hostname == $h and .node.status == "ready")'
}

provision_manager() {
	id -u shoal >/dev/null 2>&1 ||
		useradd --system --no-create-home --home-dir /var/lib/shoal --shell /usr/sbin/nologin shoal
	install -m 0644 "$SHOAL_SRC/deploy/systemd/shoal-manager.service" /etc/systemd/system/
	local opts="" token
	if [ -n "$SHOAL_JOIN" ]; then
		token=$(handoff manager-token)
		opts="--join $SHOAL_JOIN --token $token"
	fi
	if [ -n "$SHOAL_REGISTRY" ]; then
		opts="$opts --insecure-registry $SHOAL_REGISTRY"
	fi
	# The file holds a join token: root only.
	(umask 077 && cat >/etc/default/shoal-manager) <<-EOF
		# Written by deploy/vagrant/provision.sh for $SHOAL_NAME.
		SHOAL_ADDR=$SHOAL_IP:$SHOAL_MANAGER_PORT
		SHOAL_RAFT_ADDR=$SHOAL_IP:$SHOAL_RAFT_PORT
		SHOAL_GOSSIP_ADDR=$SHOAL_IP:$SHOAL_GOSSIP_PORT
		SHOAL_MANAGER_OPTS="$opts"
	EOF
	chmod 0600 /etc/default/shoal-manager
	systemctl daemon-reload
	systemctl enable shoal-manager.service
	systemctl restart shoal-manager.service
	log "waiting for shoal-manager to be a voter with a leader"
	if ! wait_for 90 manager_joined; then
		journalctl -u shoal-manager -n 40 --no-pager >&2
		die "shoal-manager did not join the cluster within 90 s (log above)"
	fi
}

provision_registry() {
	cat >/etc/systemd/system/shoal-lab-registry.service <<-EOF
		# Written by deploy/vagrant/provision.sh: the lab's registry, serving a
		# busybox image built from Debian's busybox-static.
		[Unit]
		Description=shoal lab registry (busybox image)
		Wants=network-online.target
		After=network-online.target

		[Service]
		ExecStart=/usr/local/bin/shoal-lab-registry --addr $SHOAL_IP:5000
		Restart=on-failure
		DynamicUser=yes
		ProtectSystem=strict
		ProtectHome=yes
		PrivateTmp=yes

		[Install]
		WantedBy=multi-user.target
	EOF
	systemctl daemon-reload
	systemctl enable shoal-lab-registry.service
	systemctl restart shoal-lab-registry.service
	if ! wait_for 30 registry_listening; then
		journalctl -u shoal-lab-registry -n 20 --no-pager >&2
		die "shoal-lab-registry is not listening on $SHOAL_IP:5000 (log above)"
	fi
}

registry_listening() {
	# bash's /dev/tcp: a TCP connect to the registry, from this VM.
	: 3<>"/dev/tcp/$SHOAL_IP/5000"
}

provision_worker() {
	systemctl enable --now containerd.service
	install -m 0644 "$SHOAL_SRC/deploy/systemd/shoal-agent.service" /etc/systemd/system/
	local opts="--hostname $SHOAL_NAME"
	if [ -n "$SHOAL_REGISTRY" ]; then
		opts="$opts --insecure-registry $SHOAL_REGISTRY"
	fi
	local token
	token=$(handoff worker-token)
	# The file holds the worker join token: root only.
	(umask 077 && cat >/etc/default/shoal-agent) <<-EOF
		# Written by deploy/vagrant/provision.sh for $SHOAL_NAME.
		SHOAL_JOIN=$SHOAL_MANAGERS
		SHOAL_TOKEN=$token
		SHOAL_ADVERTISE_ADDR=$SHOAL_IP:$SHOAL_AGENT_PORT
		SHOAL_GOSSIP_ADDR=$SHOAL_IP:$SHOAL_GOSSIP_PORT
		SHOAL_AGENT_OPTS="$opts"
	EOF
	chmod 0600 /etc/default/shoal-agent
	systemctl daemon-reload
	systemctl enable shoal-agent.service
	systemctl restart shoal-agent.service
	log "waiting for node $SHOAL_NAME to be ready"
	if ! wait_for 90 node_ready; then
		journalctl -u shoal-agent -n 40 --no-pager >&2
		die "node $SHOAL_NAME was not ready within 90 s (log above)"
	fi
}

case "$SHOAL_ROLE" in
manager) provision_manager ;;
worker) provision_worker ;;
esac
if [ "$SHOAL_RUN_REGISTRY" = yes ]; then
	provision_registry
	log "registry serving $SHOAL_IP:5000/shoal/busybox:latest"
fi
log "ready"
if [ "$SHOAL_ROLE" = manager ]; then
	shoalctl cluster status
else
	shoalctl node ls
fi
