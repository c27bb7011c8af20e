#!/usr/bin/env bash
# Random passphrases and database passwords for docker-compose.yml, one file per secret
# in deploy/secrets/ (or the folder given). Existing files are kept: keystores sealed with
# them would not open with new ones. The folder is the owner's alone (0700); the files
# are 0644 because compose bind-mounts each one into the containers given it, whose
# processes run as their images' own users (nrm, postgres), not as the file's owner.
set -euo pipefail
dir="${1:-$(cd "$(dirname "$0")" && pwd)/secrets}"
mkdir -p "$dir"
chmod 700 "$dir"
umask 022
for name in registry_passphrase operator_passphrase police_passphrase authority_passphrase \
            notifier_passphrase pg_superuser pg_registry pg_police pg_authority; do
  if [ ! -s "$dir/$name" ]; then
    # letters and digits only: the values go into SQL and shell without quoting trouble
    # (tr is stopped by SIGPIPE once head has enough: not a failure)
    (set +o pipefail; LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32) > "$dir/$name"
    echo "made $dir/$name"
  fi
  chmod 0644 "$dir/$name"
done
