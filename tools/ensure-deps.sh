#!/usr/bin/env bash
# Installs the two Debian packages Arbor links against (liblmdb-dev, libopenblas-dev) when missing.
# Needs root (or sudo). Safe to run again: it does nothing when both are present.
set -euo pipefail
missing=()
for p in liblmdb-dev libopenblas-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "arbor: installing ${missing[*]} (apt-get)" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
