#!/usr/bin/env python3
"""Renders, lints and validates the Helm chart, and keeps the files derived from it current.

Usage:
  scripts/chart.py check      # what `make chart-check` (and so `make test`) runs
  scripts/chart.py generate   # rewrite the derived files (`make manifests`, `make docs`)
  scripts/chart.py render [--skip-crds] [--values FILE]  # the install manifest for those values (tests apply it)

`check`:
  1. lints charts/ferrogate (strict, Kubernetes 1.35) with the Helm v4 library from the PyPI
     package `helm-python-sdk`;
  2. renders it with default values and with charts/ferrogate/ci/all-on-values.yaml (every
     option on) and validates every rendered object and every CRD of the chart with
     scripts/validate-manifests.py: built-in kinds with `kubernetes-validate --strict`, custom
     resources (GatewayClass, EnvoyProxy) against the chart's CRD schemas. ServiceMonitor and
     PodMonitor are checked only for their apiVersion, kind and the fields the chart sets:
     no prometheus-operator CRD schema can be obtained on these machines;
  3. checks that values.schema.json rejects bad values with a clear message;
  4. checks the derived files below are current (fails with "run `make manifests`").

Derived files (`generate`):
  - manifests/crds/ferrogate.yaml: a copy of the chart's crds/ (Ferrogate's own EnvoyProxy CRD,
    from the Rust types, see crates/api/tests/crds.rs). The chart ships no Gateway API CRDs:
    users install upstream's release; custom resources are validated against upstream's CRDs
    taken from the sigs.k8s.io/gateway-api Go module (scripts/cluster/gateway-api-crds.sh);
  - manifests/install.yaml: Namespace + CRDs + the chart rendered with default values;
  - the values table in charts/ferrogate/README.md (from values.yaml comments + the schema);
  - docs/envoyproxy.md (from the EnvoyProxy CRD's schema);
  - docs/dashboards/ferrogate.json (copy of charts/ferrogate/dashboards/ferrogate.json).

The Python packages are installed (pinned) into the venv .tools/chartenv on first use.
"""
import json
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "ferrogate"
ENV_DIR = ROOT / ".tools" / "chartenv"
PINS = ["helm-python-sdk==0.2.2", "jsonschema==4.26.0", "pyyaml==6.0.3", "kubernetes-validate==1.37.0"]
INNER = "--in-venv"
RELEASE = "ferrogate"
NAMESPACE = "ferrogate-system"
KUBE_VERSION = "v1.35.0"


def ensure_venv() -> Path:
    import fcntl
    python = ENV_DIR / "bin" / "python"
    probe = [str(python), "-c", "import helm_python, jsonschema, yaml, kubernetes_validate"]
    ENV_DIR.parent.mkdir(parents=True, exist_ok=True)
    with open(ENV_DIR.parent / "chartenv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
            return python
        print(f"chart: installing {' '.join(PINS)} into .tools/chartenv", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(ENV_DIR)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PINS],
                       check=True, stdout=sys.stderr)
        subprocess.run(probe, check=True)
        return python


# --- rendering ---------------------------------------------------------------------------

# Helm's install order (pkg/release/util/kind_sorter.go), for install.yaml.
INSTALL_ORDER = ["PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
                 "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
                 "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
                 "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList",
                 "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController",
                 "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob",
                 "IngressClass", "Ingress", "APIService"]


def load_yaml_docs(text):
    import yaml
    return [d for d in yaml.safe_load_all(text) if d]


def render(values):
    """(objects, {template: text}) of the chart rendered offline."""
    import helm_python
    chart = helm_python.Chart.load(str(CHART))
    out = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects = []
    for template in sorted(out):
        if template.endswith("NOTES.txt"):
            continue
        objects += load_yaml_docs(out[template])
    return objects, out


def install_order(obj):
    kind = obj.get("kind")
    rank = INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)
    return rank, kind or "", (obj.get("metadata") or {}).get("name", "")


def install_yaml(values=None, crds=True):
    import yaml
    objects, _ = render(values or {})
    objects.sort(key=install_order)
    parts = [
        "# Ferrogate install manifest: the chart charts/ferrogate rendered with default values\n"
        f"# (release {RELEASE}, namespace {NAMESPACE}) plus its CRDs. Generated by scripts/chart.py\n"
        "# (`make manifests`); do not edit. `kubectl apply --server-side -f install.yaml`.\n",
        yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}, sort_keys=False),
    ]
    for crd_file in sorted((CHART / "crds").glob("*.yaml")) if crds else []:
        for doc in load_yaml_docs(crd_file.read_text()):
            parts.append(yaml.safe_dump(doc, sort_keys=False, width=120))
    for obj in objects:
        parts.append(yaml.safe_dump(obj, sort_keys=False, width=120))
    return parts[0] + "---\n".join(parts[1:])


# --- values table ------------------------------------------------------------------------

def documented_values():
    """[(dotted key, description)] from the `# --` comments of values.yaml, in file order."""
    rows, stack, pending = [], [], None
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if pending is not None:
                pending.append(stripped[1:].strip())
            continue
        if not stripped or stripped.startswith("- ") or ":" not in stripped:
            continue
        key = stripped.split(":", 1)[0].strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        if pending is not None:
            rows.append((".".join(k for _, k in stack), " ".join(pending)))
            pending = None
    return rows


def lookup(tree, dotted):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def schema_at(schema, dotted, root):
    node = schema
    for part in dotted.split("."):
        node = resolve(node, root)
        node = (node.get("properties") or {}).get(part, {})
    return resolve(node, root)


def resolve(node, root):
    while isinstance(node, dict) and "$ref" in node:
        node = lookup(root, node["$ref"].lstrip("#/").replace("/", "."))
    return node


def schema_type(node):
    t = node.get("type", "object")
    text = " or ".join(t) if isinstance(t, list) else t
    if "enum" in node:
        text += " (" + ", ".join(f"`{v}`" for v in node["enum"]) + ")"
    if "minimum" in node:
        text += f", >= {node['minimum']}"
    return text


def undocumented(values, documented, prefix=""):
    """Keys of values.yaml with neither a description nor documented children."""
    missing = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if path in documented:
            continue
        if isinstance(value, dict) and value:
            missing += undocumented(value, documented, path + ".")
        else:
            missing.append(path)
    return missing


def values_table():
    import yaml
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    rows = documented_values()
    problems = [f"charts/ferrogate/values.yaml: `{k}` has no `# --` description"
                for k in undocumented(values, {k for k, _ in rows})]
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for key, description in rows:
        node = schema_at(schema, key, schema)
        if not node:
            problems.append(f"charts/ferrogate/values.schema.json has no property for `{key}`")
        default = json.dumps(lookup(values, key))
        lines.append(f"| `{key}` | {schema_type(node)} | `{default}` | {description} |")
    return "\n".join(lines) + "\n", problems


def chart_readme(current):
    begin, end = "<!-- values:begin (generated by scripts/chart.py) -->\n", "<!-- values:end -->"
    table, problems = values_table()
    head, _, rest = current.partition(begin)
    _, _, tail = rest.partition(end)
    return head + begin + table + end + tail, problems


# --- EnvoyProxy reference ----------------------------------------------------------------

# EnvoyProxy fields whose type is a Kubernetes API type: listed, not expanded.
KUBERNETES_TYPED = {"env", "resources", "affinity", "imagePullSecrets", "securityContext", "tolerations",
                    "topologySpreadConstraints", "rollingUpdate", "behavior", "metrics"}

def envoyproxy_doc():
    crd = next(d for d in load_yaml_docs((CHART / "crds" / "ferrogate.yaml").read_text())
               if d.get("kind") == "CustomResourceDefinition")
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    out = [
        "# EnvoyProxy reference",
        "",
        "<!-- Generated by scripts/chart.py from the EnvoyProxy CRD schema (`make docs`); do not edit. -->",
        "",
        f"`apiVersion: {crd['spec']['group']}/{version['name']}`, `kind: {crd['spec']['names']['kind']}`, "
        f"{crd['spec']['scope']}. A GatewayClass (`spec.parametersRef`) or a Gateway "
        "(`spec.infrastructure.parametersRef`) names an EnvoyProxy; the Gateway's reference wins. "
        "Field names follow Envoy Gateway's `EnvoyProxy` where the feature is the same, so a config "
        "moves over by changing `apiVersion` (see [migration.md](migration.md)).",
        "",
        "Fields whose type is a Kubernetes type (`resources`, `affinity`, `tolerations`, ...) take "
        "that type's usual fields; they are not expanded here.",
        "",
        "| field | type | description |",
        "| --- | --- | --- |",
    ]

    def describe(node):
        text = " ".join((node.get("description") or "").split())
        return text.replace("|", "\\|")

    def type_of(node):
        if "type" in node:
            t = node["type"]
            if t == "array":
                return f"[]{type_of(node.get('items') or {})}"
            if t == "object" and "additionalProperties" in node and "properties" not in node:
                return f"map[string]{type_of(node['additionalProperties'] or {})}"
            text = t
        elif node.get("x-kubernetes-int-or-string"):
            text = "int or string"
        elif "anyOf" in node or "oneOf" in node:
            text = " or ".join(sorted({type_of(n) for n in node.get("anyOf", node.get("oneOf"))}))
        else:
            text = "any"
        if "enum" in node:
            text += " (" + ", ".join(f"`{v}`" for v in node["enum"] if v is not None) + ")"
        if "format" in node:
            text += f" ({node['format']})"
        return text

    def walk(node, path, depth):
        props = node.get("properties") or {}
        items = node.get("items") or {}
        if not props and items.get("properties"):
            props = items["properties"]
        required = set(node.get("required") or items.get("required") or [])
        for name in sorted(props):
            child = props[name]
            field = f"{path}.{name}" if path else name
            suffix = " (required)" if name in required else ""
            out.append(f"| `{field}` | {type_of(child)}{suffix} | {describe(child)} |")
            if name not in KUBERNETES_TYPED and not child.get("x-kubernetes-preserve-unknown-fields"):
                walk(child, field + ("[]" if child.get("type") == "array" else ""), depth + 1)

    walk({"properties": {"spec": schema["properties"]["spec"]}}, "", 0)
    return "\n".join(out) + "\n"


# --- all derived files -------------------------------------------------------------------

def derived():
    """{relative path: content} of every derived file, and problems found on the way."""
    files = {
        "manifests/crds/ferrogate.yaml": (CHART / "crds" / "ferrogate.yaml").read_text(),
        "manifests/install.yaml": install_yaml(),
        "docs/envoyproxy.md": envoyproxy_doc(),
        "docs/dashboards/ferrogate.json": (CHART / "dashboards" / "ferrogate.json").read_text(),
    }
    readme, problems = chart_readme((CHART / "README.md").read_text())
    files["charts/ferrogate/README.md"] = readme
    return files, problems


def generate():
    files, problems = derived()
    for rel, content in files.items():
        path = ROOT / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
            print(f"chart: wrote {rel}")
    for p in problems:
        print(f"ERROR {p}")
    return 1 if problems else 0


# --- checks ------------------------------------------------------------------------------

def expect_rejected(values, *fragments):
    import helm_python
    try:
        render(values)
    except helm_python.HelmError as e:
        message = str(e)
        missing = [f for f in fragments if f not in message]
        if missing:
            return [f"values {values} were rejected, but the message lacks {missing}: {message}"]
        return []
    return [f"values.schema.json accepted bad values {values}"]


def monitor_problems(objects):
    """ServiceMonitor/PodMonitor: no CRD schema is available here, so check what the chart sets."""
    problems = []
    for obj in objects:
        kind = obj.get("kind")
        if kind not in ("ServiceMonitor", "PodMonitor"):
            continue
        if obj.get("apiVersion") != "monitoring.coreos.com/v1":
            problems.append(f"{kind}: apiVersion {obj.get('apiVersion')}")
        spec = obj.get("spec") or {}
        allowed = {"selector", "namespaceSelector", "endpoints", "podMetricsEndpoints", "podTargetLabels"}
        problems += [f"{kind}: unexpected spec.{k}" for k in spec if k not in allowed]
        endpoints = spec.get("endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints") or []
        if not endpoints or not (spec.get("selector") or {}).get("matchLabels"):
            problems.append(f"{kind}: needs a selector and endpoints")
        for e in endpoints:
            problems += [f"{kind}: unexpected endpoint field {k}" for k in e
                         if k not in {"port", "path", "interval", "honorLabels", "relabelings"}]
    return problems


def contract_problems(objects):
    """The controller's command-line contract and the objects it relies on."""
    problems = []
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    for flag in ["--xds-addr=0.0.0.0:18000", "--metrics-addr=0.0.0.0:19001", "--health-addr=0.0.0.0:8081",
                 "--namespace=$(POD_NAMESPACE)", "--pod-name=$(POD_NAME)", "--xds-tls-dir=/etc/ferrogate/xds-tls"]:
        if flag not in args:
            problems.append(f"controller args lack {flag}")
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    if f"--xds-service={RELEASE}" not in args or RELEASE not in services:
        problems.append("the xDS Service and --xds-service must both be the release's full name")
    job = [o for o in objects if o["kind"] == "Job"]
    if not job or "pre-install" not in job[0]["metadata"]["annotations"].get("helm.sh/hook", ""):
        problems.append("the certgen Job must be a pre-install hook")
    return problems


def upstream_crds():
    """Upstream's Gateway API CRD files (experimental channel) from the Go module, which the
    chart does not ship: users install them from the Gateway API release."""
    out = subprocess.run([str(ROOT / "scripts" / "cluster" / "gateway-api-crds.sh"), "experimental"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return sorted(str(p) for p in Path(out).glob("gateway.networking.k8s.io_*.yaml"))


def real_cluster_problems(rendered):
    """What a chart needs in real clusters: usable as a subchart, labels on everything,
    overridable security contexts (OpenShift), a PDB that never blocks a drain."""
    problems = []
    for label, objects in rendered.items():
        for o in objects:
            labels = (o.get("metadata") or {}).get("labels") or {}
            if labels.get("app.kubernetes.io/managed-by") != "Helm":
                problems.append(f"{label}: {o['kind']} {o['metadata'].get('name')} lacks app.kubernetes.io/managed-by")
            if label == "all-on" and labels.get("example.test/common") != "yes":
                problems.append(f"all-on: {o['kind']} {o['metadata'].get('name')} lacks the commonLabels")
    deployment = next(o for o in rendered["all-on"] if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    expected = [
        ("--debounce-ms=250" in container["args"], "extraArgs"),
        ("--static-address-pool=10.245.0.0/24" in container["args"], "staticAddressPools"),
        (any(e["name"] == "EXTRA" for e in container["env"]), "extraEnv"),
        (any(v["name"] == "extra" for v in pod["spec"]["volumes"]), "extraVolumes"),
        (any(m["name"] == "extra" for m in container["volumeMounts"]), "extraVolumeMounts"),
        (container["livenessProbe"].get("timeoutSeconds") == 3, "livenessProbe"),
        (container["readinessProbe"].get("failureThreshold") == 6, "readinessProbe"),
        (pod["metadata"]["labels"].get("example.test/common") == "yes", "commonLabels on pods"),
        ("runAsUser" not in pod["spec"]["securityContext"], "podSecurityContext (null UIDs)"),
    ]
    problems += [f"all-on: {what} not rendered" for ok, what in expected if not ok]
    pdb = next(o for o in rendered["all-on"] if o["kind"] == "PodDisruptionBudget")
    if pdb["spec"] != {"maxUnavailable": 1, "selector": pdb["spec"]["selector"]}:
        problems.append(f"all-on (3 replicas, maxUnavailable 1): PDB spec {pdb['spec']}")
    one, _ = render({"podDisruptionBudget": {"enabled": True, "minAvailable": 1}})
    spec = next(o for o in one if o["kind"] == "PodDisruptionBudget")["spec"]
    if spec.get("maxUnavailable") != 1 or "minAvailable" in spec:
        problems.append(f"one replica: the PDB would block drains: {spec}")
    try:
        render({"global": {"imageRegistry": "registry.example.test"}})
    except Exception as e:  # noqa: BLE001 - any failure means a parent chart cannot pass global
        problems.append(f"values with `global` (as a subchart) are refused: {e}")
    return problems


def validate(files):
    crds = sorted(str(p) for p in (CHART / "crds").glob("*.yaml")) + upstream_crds()
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "validate-manifests.py"), *crds, *files],
                            capture_output=True, text=True)
    print(result.stdout + result.stderr, end="")
    return [] if result.returncode == 0 else ["validate-manifests failed"]


def check():
    import helm_python
    import yaml
    problems = []
    lint = helm_python.lint(str(CHART), strict=True, namespace=NAMESPACE, kube_version=KUBE_VERSION)
    for m in lint.get("messages") or []:
        if m.get("severity", 0) >= 2:
            problems.append(f"lint: {m.get('path')}: {m.get('error')}")
    problems += [f"lint: {e}" for e in lint.get("errors") or []]
    all_on = yaml.safe_load((CHART / "ci" / "all-on-values.yaml").read_text())
    lint_all = helm_python.lint(str(CHART), all_on, strict=True, namespace=NAMESPACE, kube_version=KUBE_VERSION)
    problems += [f"lint (all-on): {m.get('path')}: {m.get('error')}" for m in lint_all.get("messages") or []
                 if m.get("severity", 0) >= 2]

    rendered = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, values in (("default", {}), ("all-on", all_on)):
            objects, _ = render(values)
            rendered[label] = objects
            problems += [f"{label}: {p}" for p in monitor_problems(objects) + contract_problems(objects)]
            path = Path(tmp) / f"{label}.yaml"
            path.write_text(yaml.safe_dump_all(
                [o for o in objects if o["kind"] not in ("ServiceMonitor", "PodMonitor")], sort_keys=False))
        problems += validate([str(Path(tmp) / "default.yaml"), str(Path(tmp) / "all-on.yaml")])
    kinds = {o["kind"] for o in rendered["all-on"]}
    for kind in ["GatewayClass", "EnvoyProxy", "ServiceMonitor", "PodMonitor", "ConfigMap", "PodDisruptionBudget", "Job"]:
        if kind not in kinds:
            problems.append(f"all-on values render no {kind}")
    dashboard = next((o for o in rendered["all-on"] if o["kind"] == "ConfigMap"), {})
    if (dashboard.get("data") or {}).get("ferrogate.json", "").strip() != \
            (CHART / "dashboards" / "ferrogate.json").read_text().strip():
        problems.append("the dashboard ConfigMap does not carry dashboards/ferrogate.json")

    problems += expect_rejected({"replicas": -1}, "/replicas", "minimum")
    problems += expect_rejected({"replica": 2}, "additional properties 'replica' not allowed")
    problems += expect_rejected({"logging": {"format": "xml"}}, "/logging/format")
    problems += expect_rejected({"xds": {"mode": "incremental"}}, "/xds/mode")
    problems += expect_rejected({"gatewayClass": {"envoyProxy": {"replicas": "two"}}}, "/gatewayClass/envoyProxy/replicas")
    problems += expect_rejected({"extraArg": ["--debounce-ms=5"]}, "additional properties 'extraArg' not allowed")
    problems += expect_rejected({"extraArgs": ["debounce-ms=5"]}, "/extraArgs/0")
    problems += expect_rejected({"staticAddressPools": ["pool-a"]}, "/staticAddressPools/0")
    problems += expect_rejected({"podDisruptionBudget": {"maxUnavailble": 1}}, "additional properties 'maxUnavailble' not allowed")
    problems += real_cluster_problems(rendered)

    files, derive_problems = derived()
    problems += derive_problems
    for rel, content in files.items():
        path = ROOT / rel
        if not path.exists() or path.read_text() != content:
            problems.append(f"{rel} is stale: run `make manifests`")
    for p in problems:
        print(f"ERROR {p}")
    print(f"chart-check: lint, render (default, all-on: {len(rendered['default'])} and "
          f"{len(rendered['all-on'])} objects), schema rejections, derived files: "
          f"{'1 passed, 0 failed' if not problems else '0 passed, 1 failed'}")
    return 1 if problems else 0


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("check", "generate", "render"):
        print(__doc__)
        return 2
    if INNER not in sys.argv:
        python = ensure_venv()
        sys.stdout.flush()
        return subprocess.run([str(python), __file__, *sys.argv[1:], INNER]).returncode
    os.chdir(ROOT)
    if sys.argv[1] == "render":
        return render_command(sys.argv[2:])
    return check() if sys.argv[1] == "check" else generate()


def render_command(args):
    """`render [--skip-crds] [--values FILE]`: the install manifest for those values on stdout
    (without the chart's CRDs with --skip-crds: apply charts/ferrogate/crds/ first, so the
    custom resources the chart renders find their kind)."""
    import yaml
    values = {}
    if "--values" in args:
        values = yaml.safe_load(Path(args[args.index("--values") + 1]).read_text()) or {}
    sys.stdout.write(install_yaml(values, crds="--skip-crds" not in args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
