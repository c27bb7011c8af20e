#!/usr/bin/env bash
# Fetch an Apache Kafka broker's runtime classpath from Maven Central into
# deploy/.cache/kafka-<version>/libs. The Apache download mirrors (the .tgz) are not
# reachable from CI, Maven Central is; the distribution's libs/ is the runtime closure of
# kafka_2.13 plus a logging binding (deploy/kafka/pom-<version>.xml).
#
# Idempotent and cached: a finished fetch leaves a .complete marker, a second run is instant.
# Prefers 4.1.1; falls back to 3.9.1 only if 4.1.1 cannot be resolved.
# Env: KAFKA_VERSION (force one version), MAVEN_REPO_LOCAL (maven's local repository).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="$here/.cache"
preferred="4.1.1"
fallback="3.9.1"
plugin="org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"

log() { printf '[fetch-kafka] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1
  fi
}

ensure_tools() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  if [ ${#missing[@]} -gt 0 ]; then
    log "missing ${missing[*]}: installing with apt-get (Kafka 4.x needs Java 17)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  fi
  local major
  major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
  if [ -n "$major" ] && [ "$major" -lt 17 ]; then
    log "warning: java $major found; Kafka 4.x brokers need Java 17 or newer"
  fi
}

is_cached() { [ -f "$cache/kafka-$1/libs/.complete" ]; }

fetch() {
  local version="$1" dest="$cache/kafka-$1" tmp
  local pom="$here/kafka/pom-$version.xml"
  [ -f "$pom" ] || { log "no pom for $version at $pom"; return 1; }
  tmp="$dest/libs.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  log "resolving kafka_2.13:$version and its runtime dependencies from Maven Central ..."
  local repo_opt=()
  [ -n "${MAVEN_REPO_LOCAL:-}" ] && repo_opt=("-Dmaven.repo.local=$MAVEN_REPO_LOCAL")
  # Show each artifact as it downloads (nothing when maven's local repository has them);
  # the full output stays in mvn.log.
  if ! mvn -B -f "$pom" "${repo_opt[@]}" "$plugin" \
      -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 \
      | tee "$dest/mvn.log" \
      | { grep --line-buffered -o 'Downloaded from [^:]*: .*/[^/]*\.jar' \
          | sed -u 's#.*/#[fetch-kafka]   downloaded #' >&2 || true; }; then
    log "mvn failed for $version (see $dest/mvn.log):"
    tail -n 20 "$dest/mvn.log" >&2 || true
    rm -rf "$tmp"
    return 1
  fi
  if ! ls "$tmp"/kafka_2.13-"$version".jar >/dev/null 2>&1; then
    log "kafka_2.13-$version.jar missing after mvn; not caching"
    rm -rf "$tmp"
    return 1
  fi
  echo "$version" >"$tmp/.complete"
  rm -rf "$dest/libs"
  mv "$tmp" "$dest/libs"
  log "kafka $version: $(find "$dest/libs" -name '*.jar' | wc -l) jars in $dest/libs"
}

main() {
  mkdir -p "$cache"
  local versions=("$preferred" "$fallback")
  [ -n "${KAFKA_VERSION:-}" ] && versions=("$KAFKA_VERSION")
  for v in "${versions[@]}"; do
    if is_cached "$v"; then
      log "kafka $v already cached in $cache/kafka-$v/libs"
      return 0
    fi
  done
  ensure_tools
  for v in "${versions[@]}"; do
    mkdir -p "$cache/kafka-$v"
    if fetch "$v"; then return 0; fi
    log "kafka $v could not be fetched"
  done
  log "no Kafka broker classpath could be fetched"
  return 1
}

main "$@"
