#!/usr/bin/env bash
# Builds shoal-lab:dev, the one image of the Docker-in-Docker lab, without a
# public registry: no base image is pulled. The image's file system is put
# together from this machine's own binaries — shoal's (built static here),
# Debian's containerd, runc, bash and busybox-static — plus the shared
# libraries they link, and imported into the Docker engine given by
# DOCKER_HOST.
#
#   deploy/compose/build-image.sh [TAG]        (default shoal-lab:dev)
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=${1:-shoal-lab:dev}
docker=${DOCKER:-/usr/bin/docker}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc/containerd,tmp,run,var/lib,var/log,root,proc,sys,dev}
chmod 1777 "$root/tmp"

# shoal's binaries, built as `make build` builds them (so the build cache
# serves them), and Debian's; each with the libraries it links and the
# dynamic loader, which come from this same Debian.
for cmd in manager agent ctl lab-registry; do
	out=shoal-$cmd
	[ "$cmd" = ctl ] && out=shoalctl
	go build -o "$work/bin/$out" "./cmd/$cmd"
	install -D -m 0755 "$work/bin/$out" "$root/usr/local/bin/$out"
done
bins=(/usr/bin/containerd /usr/bin/containerd-shim-runc-v2 /usr/bin/ctr /usr/sbin/runc /bin/bash)
for b in "${bins[@]}" "$work"/bin/*; do
	[ -x "$b" ] || { echo "build-image: $b is missing (run: make deps)" >&2; exit 1; }
	case $b in "$work"/*) ;; *) install -D -m 0755 "$b" "$root$b" ;; esac
	ldd "$b" | awk '/=>/ {print $3} /^[ \t]*\// {print $1}' | while read -r lib; do
		[ -n "$lib" ] && [ -e "$lib" ] && install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
	done
done
# busybox-static gives the shell tools (and is what the lab registry builds
# its busybox image from, at /bin/busybox).
install -m 0755 /bin/busybox "$root/bin/busybox"
for applet in sh env sleep cat ls ps kill mkdir rm sed xargs grep awk wget nc ip hostname mount df du head tail tr date id; do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
ln -s /bin/env "$root/usr/bin/env"

cp deploy/compose/containerd.toml "$root/etc/containerd/shoal-lab.toml"
install -m 0755 deploy/compose/agent-entrypoint.sh "$root/usr/local/bin/shoal-agent-entrypoint"
printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

tar -C "$root" --numeric-owner -cf "$work/rootfs.tar" .
"$docker" import \
	--change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--change 'WORKDIR /' \
	"$work/rootfs.tar" "$tag" >/dev/null
echo "built $tag ($(du -sh "$work/rootfs.tar" | cut -f1))"
