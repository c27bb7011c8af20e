#!/usr/bin/env bash
# Make sure PostgreSQL server binaries (initdb, pg_ctl, postgres) exist on this machine;
# the tests start their own throwaway cluster with deploy/postgres.py, so no service is
# started or enabled here. Idempotent: with the binaries present it only prints where.
# Env: PG_BINDIR (use these binaries instead of searching).
set -euo pipefail

log() { printf '[ensure-postgres] %s\n' "$*" >&2; }

find_bindir() {
  if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ]; then echo "$PG_BINDIR"; return 0; fi
  local d
  # Highest installed major version first (Debian/Ubuntu layout).
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(readlink -f "$(command -v initdb)")"; return 0
  fi
  return 1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1
  fi
}

if ! bindir="$(find_bindir)"; then
  log "PostgreSQL server binaries not found: installing with apt-get ..."
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
  bindir="$(find_bindir)" || { log "still no initdb after apt-get install postgresql"; exit 1; }
fi
log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') binaries in $bindir"
echo "$bindir"
