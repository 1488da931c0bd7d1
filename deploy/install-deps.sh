#!/usr/bin/env bash
# Installs what shoal's tests, lab and demo need on a Debian machine, and only
# what is missing: containerd, runc, busybox-static, tini, iproute2, the
# protobuf compiler, Chromium (driven headless by the web UI's test), ruby
# (the test of the Vagrantfile's hand-off), and Debian's Docker engine and
# Compose (for the Docker-in-Docker lab and its test) from apt. Go modules
# come from the module proxy on first build.
set -euo pipefail

need=()
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# busybox-static (not busybox): the image the tests build needs a static binary.
# docker.io and docker-compose: the engine is started only by the
# Docker-in-Docker lab, in a network namespace of its own. tini: its
# tini-static is the init that --init bind-mounts into containers. chromium:
# the web UI's test drives it headless. ruby: runs the Vagrantfile's hand-off.
for pkg in containerd runc busybox-static tini iproute2 protobuf-compiler libprotobuf-dev docker.io docker-compose chromium ruby; do
	installed "$pkg" || need+=("$pkg")
done

if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing ${need[*]}; run as root or: apt-get install ${need[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
