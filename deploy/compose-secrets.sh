#!/usr/bin/env bash
# Random passphrases and database passwords for docker-compose.yml, one file per secret
# (mode 0600) in deploy/secrets/. Existing files are kept: keystores sealed with them
# would not open with new ones.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
chmod 700 "$dir"
umask 077
for name in registry_passphrase operator_passphrase police_passphrase authority_passphrase \
            notifier_passphrase pg_superuser pg_registry pg_police pg_authority; do
  if [ ! -s "$dir/$name" ]; then
    # letters and digits only: the values go into SQL and shell without quoting trouble
    LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 > "$dir/$name"
    echo "made $dir/$name"
  fi
done
