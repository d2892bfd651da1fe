#!/usr/bin/env bash
# Builds what the upstream Gateway API conformance suite needs on the local cluster, cached by
# version under $TOOLS_DIR/upstream-conformance/ (outside git):
#   suite-$GATEWAY_API_VERSION-<hash>/conformance.test  the suite, unmodified: this folder's
#       conformance_test.go compiled against sigs.k8s.io/gateway-api/conformance
#   suite-.../echo-basic    the echo backend of the suite's base manifests, from the same module
#   coredns-$COREDNS_VERSION/coredns    the DNS server of the UDPRoute test, from the CoreDNS
#       module with only the plugins the suite's Corefile names
# The go.mod files are generated here from the versions in scripts/cluster/versions.sh; go.sum
# comes from the module proxy at build time. Prints the suite folder (coredns is beside it).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
TOOLS_DIR=${TOOLS_DIR:-$root/.tools}
source "$root/scripts/cluster/versions.sh"
export GOFLAGS=${GOFLAGS:--buildvcs=false}
export CGO_ENABLED=0
# As for the control plane: the binaries are the cache, the build objects are disk for nothing.
if [[ -z "${GOCACHE:-}" ]]; then
  export GOCACHE="$TOOLS_DIR/upstream-conformance/go-build-cache"
  trap 'rm -rf "$GOCACHE"' EXIT
fi
log() { echo "upstream-conformance build: $*" >&2; }
command -v go >/dev/null || { log "needs Go (1.25 or newer)"; exit 1; }

base="$TOOLS_DIR/upstream-conformance"
# The suite folder changes when this folder's Go files do, so an edit is never served stale.
hash=$(cat "$here"/*.go | sha256sum | cut -c1-12)
suite="$base/suite-$GATEWAY_API_VERSION-$hash"
coredns="$base/coredns-$COREDNS_VERSION"

build_suite() {
  [[ -x "$suite/conformance.test" && -x "$suite/echo-basic" ]] && return
  local src="$suite/src"
  mkdir -p "$src"
  cp "$here"/*.go "$src/"
  # The conformance module requires gateway-api at a placeholder version and replaces it with
  # its parent folder, which a dependency's replace cannot do: pin the real release instead.
  cat > "$src/go.mod" <<GOMOD
module ferrogate.dev/test-infra/upstream-conformance

go 1.25.0

require (
	sigs.k8s.io/gateway-api $GATEWAY_API_VERSION
	sigs.k8s.io/gateway-api/conformance $GATEWAY_API_VERSION
)

replace sigs.k8s.io/gateway-api => sigs.k8s.io/gateway-api $GATEWAY_API_VERSION
GOMOD
  log "resolving sigs.k8s.io/gateway-api/conformance $GATEWAY_API_VERSION"
  (cd "$src" && go mod tidy)
  log "building the suite and echo-basic"
  (cd "$src" && go test -c -trimpath -o "$suite/conformance.test.tmp" . \
     && go build -trimpath -ldflags "-s -w" -o "$suite/echo-basic" sigs.k8s.io/gateway-api/conformance/echo-basic)
  mv "$suite/conformance.test.tmp" "$suite/conformance.test"
}

build_coredns() {
  [[ -x "$coredns/coredns" ]] && return
  local src="$coredns/src"
  mkdir -p "$src"
  # CoreDNS's documented way to build with a chosen plugin set: set the directive list (in
  # plugin.cfg's order, which is the order plugins run in) and import those plugins.
  cat > "$src/main.go" <<'GO'
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/whoami"
)

func init() {
	dnsserver.Directives = []string{"errors", "log", "forward", "whoami"}
}

func main() {
	coremain.Run()
}
GO
  cat > "$src/go.mod" <<GOMOD
module ferrogate.dev/test-infra/coredns-build

go 1.23.0

require github.com/coredns/coredns $COREDNS_VERSION
GOMOD
  log "building CoreDNS $COREDNS_VERSION"
  (cd "$src" && go mod tidy && go build -trimpath -ldflags "-s -w" -o "$coredns/coredns.tmp" .)
  mv "$coredns/coredns.tmp" "$coredns/coredns"
}

build_suite
build_coredns
echo "$suite"
