#!/usr/bin/env bash
# Make sure podman, debootstrap and runc exist on this machine (Debian packages), for
# `make images` (deploy/images.py builds the images offline) and deploy/compose.py (runs
# docker-compose.yml under podman-compose, a Python package of the test extras), which
# the suite's compose test uses (deploy/test-services.sh runs this). Idempotent: with the
# tools present it only says where they are. No service is started or enabled here.
set -euo pipefail

log() { printf '[ensure-containers] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1
  fi
}

missing=()
for tool in podman debootstrap runc; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]} with apt-get ..."
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    podman debootstrap runc
fi
log "$(podman --version), debootstrap and runc present"
