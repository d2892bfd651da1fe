#!/usr/bin/env bash
# Installs the wrk load generator (Debian package `wrk`) for `make bench`'s data-plane runs.
set -euo pipefail
command -v wrk >/dev/null && exit 0
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq wrk
