#!/usr/bin/env bash
# Installs PostgreSQL's server from Debian's packages when missing (the Debezium source's
# end-to-end test and the Postgres demo start their own throw-away cluster with it).
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && command -v psql >/dev/null; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "PostgreSQL is missing and installing it needs root: apt-get install postgresql" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
# the package's own cluster is not needed (the tests run initdb in a temporary folder)
$SUDO apt-get install -y -q --no-install-recommends postgresql >/dev/null
ls /usr/lib/postgresql/*/bin/postgres >/dev/null
echo "installed: $(ls -d /usr/lib/postgresql/*/bin | tail -n 1)"
