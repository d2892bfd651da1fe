#!/usr/bin/env bash
# Starts two echo backends and `ferrogate standalone` on docs/examples/quickstart, prints
# the commands that show it working, and stops everything on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/debug
ENVOY="${FERROGATE_ENVOY:-.tools/bin/envoy}"
mkdir -p .run
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$BIN/ferrogate-echo" --http-port 9001 --pod echo-v1-local --namespace default --service echo-v1 > .run/echo-v1.log &
pids+=($!)
"$BIN/ferrogate-echo" --http-port 9002 --pod echo-v2-local --namespace default --service echo-v2 > .run/echo-v2.log &
pids+=($!)

cat <<'MSG'
Ferrogate standalone is starting on docs/examples/quickstart (Envoy listens on 127.0.0.1:8080).
Try, from another terminal:
  curl -s -H 'Host: www.example.com' http://127.0.0.1:8080/                        # echo-v1
  curl -s -H 'Host: www.example.com' http://127.0.0.1:8080/v2                      # echo-v2 (path prefix)
  curl -s -H 'Host: www.example.com' -H 'x-backend: v2' http://127.0.0.1:8080/     # echo-v2 (header match)
  for i in $(seq 10); do curl -s -H 'Host: www.example.com' http://127.0.0.1:8080/split | grep -o '"pod":"[^"]*"'; done   # 50/50
  curl -si -H 'Host: www.example.com' http://127.0.0.1:8080/headers                # X-Ferrogate request header, X-Served-By response header
  ls .run/status/*/*/                                                              # statuses
  curl -s http://127.0.0.1:19001/metrics | grep ferrogate_                         # metrics
Edit docs/examples/quickstart/routes.yaml and the change is live without restarting Envoy.
MSG
"$BIN/ferrogate" standalone --config-dir docs/examples/quickstart --status-dir .run/status --work-dir .run/envoy --envoy "$ENVOY" &
pids+=($!)
wait "${pids[-1]}"
