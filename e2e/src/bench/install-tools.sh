#!/usr/bin/env bash
# Installs what `make bench`'s data-plane runs need from Debian packages: the wrk load
# generator and valgrind (callgrind counts Envoy's instructions per request).
set -euo pipefail
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v callgrind_control >/dev/null || missing+=(valgrind)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
