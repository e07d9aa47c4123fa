#!/usr/bin/env bash
# Installs Debian's docker-compose (a Compose file parser; no Docker engine needed) when
# missing: tests/unit/test_compose.py validates docker-compose.yml with `docker-compose config`.
set -euo pipefail
if command -v docker-compose >/dev/null; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "docker-compose is missing and installing it needs root: apt-get install docker-compose" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends docker-compose >/dev/null
command -v docker-compose >/dev/null
echo "installed: $(docker-compose version --short 2>/dev/null || echo docker-compose)"
