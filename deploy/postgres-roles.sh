#!/bin/sh
# docker-compose.yml's PostgreSQL, on first start: one role and one database per service,
# each with its own password (the compose secret pg_<service>). Run by the image's entry
# point from /docker-entrypoint-initdb.d against a server on a local socket only.
set -e
for svc in registry police authority; do
  pw=$(cat /run/secrets/pg_$svc)
  psql -v ON_ERROR_STOP=1 -U postgres -c "CREATE ROLE nrm_$svc LOGIN PASSWORD '$pw'"
  psql -v ON_ERROR_STOP=1 -U postgres -c "CREATE DATABASE nrm_$svc OWNER nrm_$svc"
done
