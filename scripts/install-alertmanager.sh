#!/usr/bin/env bash
# Installs Prometheus Alertmanager (and amtool) from Debian's packages when missing.
set -euo pipefail
if command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "Alertmanager is missing and installing it needs root: apt-get install prometheus-alertmanager" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends prometheus-alertmanager >/dev/null
command -v prometheus-alertmanager >/dev/null
echo "installed: $(prometheus-alertmanager --version 2>&1 | head -n 1)"
