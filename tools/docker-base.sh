#!/usr/bin/env bash
# Build the local base image (Debian bookworm with python3 and venv) from Debian's packages
# with debootstrap, for machines that cannot pull python:3.11-slim. Kept once built:
#
#   tools/docker-base.sh                      # darkroom-base:bookworm, unless it exists
#   DARKROOM_BASE=darkroom-base:test tools/docker-base.sh
#   docker build --build-arg BASE=darkroom-base:bookworm -t darkroom-catalog services/catalog
set -euo pipefail

image=${DARKROOM_BASE:-darkroom-base:bookworm}
suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image is there"
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || {
  echo "debootstrap is missing: tools/ensure-docker.sh installs it" >&2
  exit 1
}
rootfs=$(mktemp -d "${TMPDIR:-/tmp}/darkroom-base.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
echo "building base image $image: debootstrap $suite (about a minute)..."
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
  tail -n 20 "$rootfs.log" >&2
  rm -f "$rootfs.log"
  exit 1
}
rm -f "$rootfs.log"
# Package lists, caches and docs are not needed at run time: a smaller image.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
tar -C "$rootfs" -c . | docker import --change 'CMD ["python3"]' - "$image" >/dev/null
echo "built base image $image"
