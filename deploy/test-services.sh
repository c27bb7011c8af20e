#!/usr/bin/env bash
# Before the suite: make sure what the tests start themselves can be started on this
# machine (a fresh CI machine included). Each step is idempotent and cached: the container
# images (for the test that runs docker-compose.yml under podman) are built only when
# missing or older than their sources.
set -euo pipefail
cd "$(dirname "$0")"
for step in ensure-postgres.sh fetch-kafka.sh ensure-chromium.sh ensure-containers.sh; do
  if [ -x "$step" ]; then "./$step"; fi
done
python="../.venv/bin/python"
[ -x "$python" ] || python=python3
"$python" images.py build
