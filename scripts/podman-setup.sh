#!/usr/bin/env bash
# podman-setup.sh: make a fresh Debian machine able to build and run the image with podman.
#
# Run as root (CI does). Safe to run again: packages already present are left alone and
# the config drop-in is rewritten only when its content differs.
#
# Installs podman with runc (crun fails on this kernel's cgroup layout), catatonit (podman
# builds its pod infra image from it, for `podman kube play` in tests/dags), busybox-static
# (scripts/image-test.sh uses it for the offline Go build image), jq and curl, then sets three
# engine options in a drop-in, /etc/containers/containers.conf.d/, which podman reads
# after /etc/containers/containers.conf: an existing containers.conf is kept as it is and
# only these keys are overridden.
#   runtime = "runc"             crun is the Debian default when both are installed
#   cgroup_manager = "cgroupfs"  no systemd managing cgroups here
#   default_ulimits = []         podman's default nofile/nproc limits exceed the hard
#                                limits it may set here ("error setting rlimit ...")
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
	echo "podman-setup.sh: run as root" >&2
	exit 1
fi

packages=(podman runc conmon catatonit uidmap containernetworking-plugins busybox-static jq curl ca-certificates)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if ((${#missing[@]})); then
	echo "podman-setup.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# No recommends: they would pull in buildah, dbus-user-session, fuse-overlayfs and
	# slirp4netns, none of which a rootful podman on native overlay needs.
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	echo "podman-setup.sh: packages already installed"
fi

dropin_dir=/etc/containers/containers.conf.d
dropin=$dropin_dir/50-looker-rerun-ci.conf
want='# Written by looker-rerun scripts/podman-setup.sh; safe to delete.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"'

mkdir -p "$dropin_dir"
if [[ -f $dropin && $(<"$dropin") == "$want" ]]; then
	echo "podman-setup.sh: $dropin up to date"
else
	printf '%s\n' "$want" >"$dropin.tmp"
	mv "$dropin.tmp" "$dropin"
	echo "podman-setup.sh: wrote $dropin"
fi

if [[ -n ${CONTAINERS_CONF:-} ]]; then
	echo "podman-setup.sh: warning: CONTAINERS_CONF=$CONTAINERS_CONF is set; podman reads that file instead of the drop-in" >&2
fi

# Prove the engine works: info reads the config and storage, and a throwaway container
# from a one-file image exercises runc, the rlimits and the mounts.
podman info --format 'podman {{.Version.Version}}: runtime {{.Host.OCIRuntime.Name}}, cgroups {{.Host.CgroupManager}}, storage {{.Store.GraphDriverName}}'

runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}')
if [[ $runtime != runc ]]; then
	echo "podman-setup.sh: podman uses runtime $runtime, want runc (is CONTAINERS_CONF or another drop-in overriding it?)" >&2
	exit 1
fi

probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
mkdir -p "$probe/bin"
cp /bin/busybox "$probe/bin/busybox"
tar -C "$probe" -c . | podman import --quiet - localhost/looker-rerun-setup-probe:latest >/dev/null
if out=$(podman run --rm --network=none --read-only --cap-drop=ALL --user 65532:65532 \
	localhost/looker-rerun-setup-probe:latest /bin/busybox echo ok 2>&1) && [[ $out == ok ]]; then
	echo "podman-setup.sh: podman run works"
else
	echo "podman-setup.sh: podman run failed: $out" >&2
	exit 1
fi
podman rmi --force localhost/looker-rerun-setup-probe:latest >/dev/null

# A pod on the host network, as `podman kube play` makes for tests/dags: its infra
# container comes from a pause image podman builds locally from catatonit.
podman pod rm --force --ignore looker-rerun-setup-probe >/dev/null
if out=$(podman pod create --name looker-rerun-setup-probe --network=host 2>&1 &&
	podman pod start looker-rerun-setup-probe 2>&1); then
	echo "podman-setup.sh: podman pods work"
	podman pod rm --force looker-rerun-setup-probe >/dev/null
else
	echo "podman-setup.sh: podman pod failed: $out" >&2
	podman pod rm --force --ignore looker-rerun-setup-probe >/dev/null 2>&1 || true
	exit 1
fi
