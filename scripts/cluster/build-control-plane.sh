#!/usr/bin/env bash
# Builds the local test control plane from Go modules, cached by version outside git:
#   $TOOLS_DIR/kube/$KUBE_VERSION/{kube-apiserver,kube-controller-manager,kubectl}
#   $TOOLS_DIR/etcd/$ETCD_VERSION/etcd
# Kubernetes is built through a wrapper module that requires k8s.io/kubernetes and replaces
# every staging module (which the release's go.mod points at local folders) with its published
# v0.Y.Z. The replace list is generated from that release's own go.mod, never hand-copied.
# Prints the path of the folder holding the binaries.
set -euo pipefail

TOOLS_DIR=${TOOLS_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/.tools}
source "$(dirname "$0")/versions.sh"
export GOFLAGS=${GOFLAGS:--buildvcs=false}
export CGO_ENABLED=0
# The binaries are the cache; Go's build cache for Kubernetes is several GiB of intermediate
# objects nothing reuses once they are linked. Build in a private cache and drop it afterwards,
# so a CI machine's disk holds the binaries and not the objects (CI failed once with ENOSPC
# while linking kube-apiserver).
if [[ -z "${GOCACHE:-}" ]]; then
  export GOCACHE="$TOOLS_DIR/go-build-cache"
  trap 'rm -rf "$GOCACHE"' EXIT
fi

log() { echo "build-control-plane: $*" >&2; }

command -v go >/dev/null || { log "needs Go (1.26 or newer, as the CI and development machines have)"; exit 1; }

build_kube() {
  local out="$TOOLS_DIR/kube/$KUBE_VERSION"
  if [[ -x "$out/kube-apiserver" && -x "$out/kube-controller-manager" && -x "$out/kubectl" ]]; then
    return
  fi
  local src="$TOOLS_DIR/kube/src-$KUBE_VERSION"
  mkdir -p "$src" "$out"
  local staging_version="v0.${KUBE_VERSION#v1.}"
  local gomod
  gomod=$(cd "$src" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local go_directive
  go_directive=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod" | head -1)
  {
    echo "module ferrogate.dev/test-infra/kube-build"
    echo
    echo "go $go_directive"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    # Every `k8s.io/x => ./staging/src/k8s.io/x` line of the release becomes `k8s.io/x => k8s.io/x v0.Y.Z`.
    sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/k8s\.io/[a-z0-9-]*$#\t\1 => \1 '"$staging_version"'#p' "$gomod"
    echo ")"
  } > "$src/go.mod"
  log "$(grep -c '=> k8s.io' "$src/go.mod") staging modules replaced with $staging_version"
  cat > "$src/tools.go" <<'GO'
//go:build tools

// Package tools pins the Kubernetes commands this wrapper builds.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (cd "$src" && go mod tidy -e >/dev/null 2>&1 || true; cd "$src" && go get "k8s.io/kubernetes@$KUBE_VERSION" && go mod download)
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) -X k8s.io/component-base/version.gitTreeState=clean"
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    [[ -x "$out/$cmd" ]] && continue
    log "building $cmd $KUBE_VERSION"
    (cd "$src" && go build -trimpath -ldflags "$ldflags" -o "$out/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv "$out/$cmd.tmp" "$out/$cmd"
  done
}

build_etcd() {
  local out="$TOOLS_DIR/etcd/$ETCD_VERSION"
  [[ -x "$out/etcd" ]] && return
  local src="$TOOLS_DIR/etcd/src-$ETCD_VERSION"
  mkdir -p "$src" "$out"
  if [[ ! -f "$src/go.mod" ]]; then
    (cd "$src" && go mod init ferrogate.dev/test-infra/etcd-build >/dev/null 2>&1)
  fi
  log "building etcd $ETCD_VERSION"
  (cd "$src" && go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$out/etcd.tmp" "$out/etcd"
}

build_etcd
build_kube
echo "$TOOLS_DIR"
