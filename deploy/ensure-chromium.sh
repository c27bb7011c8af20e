#!/usr/bin/env bash
# Make sure Debian's Chromium exists on this machine: the console tests drive it headless
# with Playwright (Playwright's own browser download does not work on a closed network).
# Idempotent: with the browser present it only prints where.
# Env: NRM_CHROMIUM (use this browser binary instead of /usr/bin/chromium).
set -euo pipefail

log() { printf '[ensure-chromium] %s\n' "$*" >&2; }

browser="${NRM_CHROMIUM:-/usr/bin/chromium}"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1
  fi
}

if [ ! -x "$browser" ]; then
  log "Chromium not found at $browser: installing Debian's chromium with apt-get ..."
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
  [ -x "$browser" ] || { log "still no $browser after apt-get install chromium"; exit 1; }
fi
log "$("$browser" --version 2>/dev/null | head -1) at $browser"
