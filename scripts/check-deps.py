#!/usr/bin/env python3
"""Keeps the workspace's dependency direction true (see DESIGN.md, "Workspace").

Layers, lowest first; a crate may depend only on crates of lower layers, adapters never
depend on each other, and data and pure crates never depend (directly) on crates that do
I/O, run an async runtime, serve or call the network, or read randomness.
Reads `cargo metadata`; exits 1 with one line per violation.
"""
import json
import subprocess
import sys

LAYERS = {
    "ferrogate-gateway-types": -1,  # generated Gateway API types, under everything
    "ferrogate-api": 0,
    "ferrogate-ir": 1, "ferrogate-store": 1, "ferrogate-status": 1,
    "ferrogate-translator": 2, "ferrogate-xds-translator": 2, "ferrogate-infra-render": 2,
    "ferrogate-xds-json": 2,
    "ferrogate-provider-file": 3, "ferrogate-provider-kubernetes": 3, "ferrogate-xds-server": 3,
    "ferrogate-infra-manager": 3,
    "ferrogate-runtime": 4,
    "ferrogate": 5,
}
ADAPTER_LAYER = 3
DEV_ONLY = {"ferrogate-testkit", "ferrogate-e2e", "ferrogate-cluster"}
# Crates whose presence in a data or pure crate would mean I/O, a runtime or randomness.
IMPURE = {
    "tokio", "tokio-util", "tokio-stream", "tonic", "hyper", "hyper-util", "reqwest", "notify",
    "prometheus", "rand", "getrandom", "arc-swap", "kube-client", "kube-runtime", "tracing-subscriber",
}
# Only these may hold a Kubernetes client or run a gRPC server.
KUBE_CLIENT_OK = {"ferrogate-provider-kubernetes", "ferrogate-infra-manager", "ferrogate-runtime", "ferrogate"}
TONIC_OK = {"ferrogate-xds-server"}


def main() -> int:
    meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--no-deps"]))
    problems = []
    members = {p["name"]: p for p in meta["packages"]}
    for name, pkg in sorted(members.items()):
        if name not in LAYERS and name not in DEV_ONLY:
            problems.append(f"{name}: not placed in a layer; add it to scripts/check-deps.py")
            continue
        for dep in pkg["dependencies"]:
            target, kind = dep["name"], dep.get("kind")
            if kind == "dev":
                continue  # tests may use anything
            if target in DEV_ONLY and name not in DEV_ONLY:
                problems.append(f"{name} -> {target}: a test-only crate in normal dependencies")
            if name in DEV_ONLY:
                continue
            layer = LAYERS[name]
            if target in LAYERS:
                if LAYERS[target] >= layer and not (layer == ADAPTER_LAYER and LAYERS[target] < layer):
                    what = "adapters never depend on each other" if layer == ADAPTER_LAYER == LAYERS[target] else "points up or sideways"
                    problems.append(f"{name} -> {target}: {what}")
            elif layer <= 2 and target in IMPURE:
                problems.append(f"{name} -> {target}: data and pure crates must not do I/O or run async code")
            if target in ("kube-client", "kube-runtime") and name not in KUBE_CLIENT_OK:
                problems.append(f"{name} -> {target}: only the Kubernetes provider and infra manager hold a client")
            if target == "kube" and "client" in dep.get("features", []) and name not in KUBE_CLIENT_OK:
                problems.append(f"{name} -> kube[client]: only the Kubernetes provider and infra manager hold a client")
            if target == "tonic" and name not in TONIC_OK:
                problems.append(f"{name} -> tonic: only the xDS server runs a gRPC server")
    for p in problems:
        print(p)
    print(f"check-deps: {len(members)} crates, {len(problems)} violations")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
