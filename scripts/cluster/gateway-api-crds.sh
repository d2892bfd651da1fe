#!/usr/bin/env bash
# Prints the folder of upstream's Gateway API CRDs (CHANNEL: experimental or standard) of the
# release in versions.sh, taken from the sigs.k8s.io/gateway-api Go module (downloaded into the
# module cache on first use; nothing is copied into the repository).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.sh"
channel=${1:-experimental}
export GOFLAGS=${GOFLAGS:--buildvcs=false}
dir=$(cd "${TMPDIR:-/tmp}" && go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
echo "$dir/config/crd/$channel"
