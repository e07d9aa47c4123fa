#!/usr/bin/env bash
# Installs Apache Maven from Debian's packages when missing: `make kafka` and `make connect`
# resolve the Apache Kafka, Kafka Connect and Debezium jars (and their runtime dependencies)
# from Maven Central with it.
set -euo pipefail
if command -v mvn >/dev/null; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "Maven is missing and installing it needs root: apt-get install maven" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends maven >/dev/null
echo "installed: $(mvn -v | head -n 1)"
