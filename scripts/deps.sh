#!/usr/bin/env bash
# Installs the Debian packages Runnel needs, only those missing.
#   scripts/deps.sh build   — compiler, CMake, Ninja, compression libraries, librdkafka
#   scripts/deps.sh test    — the above plus the real Kafka clients the tests drive
set -euo pipefail
what=${1:-build}
pkgs=(gcc make cmake ninja-build pkg-config zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev librdkafka-dev)
if [ "$what" = test ]; then
  pkgs+=(clang libclang-rt-14-dev kcat python3 python3-pytest python3-confluent-kafka python3-kafka
         python3-prometheus-client python3-lz4 python3-snappy e2fsprogs util-linux)
  # Node.js may come from elsewhere than Debian (with its own npm): only install when absent.
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ "$what" = test ] && [ ! -d tests/integration/js/node_modules/kafkajs ]; then
  (cd tests/integration/js && npm ci --no-audit --no-fund --silent >/dev/null 2>&1 || npm install --no-audit --no-fund --silent)
fi
