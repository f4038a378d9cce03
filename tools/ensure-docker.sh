#!/usr/bin/env bash
# The container tests need a Docker engine, a compose client and debootstrap (the base image
# is built from Debian's packages: no image can be pulled). Install Debian's packages when
# they are missing, start dockerd when it is not running, and say plainly when neither can be
# done: the exit status is then 1 and the last line of stderr is the reason.
#
#   tools/ensure-docker.sh               # install what is missing, start the engine
#   tools/ensure-docker.sh --start-only  # never install; only start dockerd if it is there
set -euo pipefail

install=1
if [ "${1:-}" = "--start-only" ]; then
  install=0
fi
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/darkroom-dockerd.log}
START_TIMEOUT_S=30

fail() {
  echo "docker unavailable: $*" >&2
  exit 1
}

have_compose() {
  docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1
}

if docker info >/dev/null 2>&1 && have_compose && command -v debootstrap >/dev/null 2>&1; then
  exit 0
fi

root=0
if [ "$(id -u)" -eq 0 ]; then
  root=1
fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
have_compose || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$install" -eq 0 ]; then
    fail "missing ${missing[*]} (make check-docker installs them)"
  fi
  if [ "$root" -eq 0 ]; then
    fail "missing ${missing[*]}, and installing Debian's packages needs root"
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    fail "missing ${missing[*]}, and there is no apt-get to install them"
  fi
  echo "Installing Debian's ${missing[*]} for the container tests..."
  apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null || fail "apt-get install ${missing[*]} failed"
fi

if ! docker info >/dev/null 2>&1; then
  if [ "$root" -eq 0 ]; then
    fail "cannot reach the Docker engine, and starting dockerd needs root"
  fi
  command -v dockerd >/dev/null 2>&1 || fail "dockerd is not installed"
  echo "Starting dockerd (log: $DOCKERD_LOG)..."
  # setsid: the engine outlives this script and the make or pytest run that called it.
  setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  for _ in $(seq "$START_TIMEOUT_S"); do
    if docker info >/dev/null 2>&1; then
      break
    fi
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    reason=$(grep -m1 -iE 'level=(fatal|error)' "$DOCKERD_LOG" 2>/dev/null | tail -c 300 || true)
    fail "dockerd did not start within ${START_TIMEOUT_S} s${reason:+: $reason}"
  fi
fi
