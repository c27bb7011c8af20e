#!/usr/bin/env bash
# Before the suite: make sure what the tests start themselves can be started on this
# machine (a fresh CI machine included). Each step is idempotent and cached.
set -euo pipefail
cd "$(dirname "$0")"
for step in ensure-postgres.sh fetch-kafka.sh ensure-chromium.sh; do
  if [ -x "$step" ]; then "./$step"; fi
done
