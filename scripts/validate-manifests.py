#!/usr/bin/env python3
"""Validates rendered Kubernetes objects against the OpenAPI schemas of a Kubernetes release.

Usage: scripts/validate-manifests.py [--tools-dir DIR] [-k VERSION] FILE...

Every FILE may hold several YAML documents (`---`). Each object is checked with
`kubernetes-validate` in strict mode (unknown fields are errors) from the PyPI package
`kubernetes-validate`. That package knows built-in kinds only and merely warns about a kind
or apiVersion it has no schema for; here that is an error, because everything Ferrogate
renders for a Gateway is a built-in kind (a typo in an apiVersion must not pass).

Custom resources are validated against the openAPIV3Schema of a CustomResourceDefinition
given in the same run (any FILE), strictly as well: unknown fields are errors, as with
`kubectl apply`'s default strict field validation. CEL rules (`x-kubernetes-validations`)
are not evaluated. A custom resource without its CRD among the files is an error.

The JSON schemas do not carry the API server's format rules, so a few of them are checked
here as well: object names (DNS-1035 labels for Services, DNS-1123 subdomains otherwise,
DNS-1123 labels for the names that become labels), label keys and values, annotation keys,
container port names (IANA service names) and Service port names.

`kubernetes-validate` is installed, if missing, into the venv `<tools-dir>/pyenv` (default
`.tools/pyenv` under the repository root), as `scripts/install-envoy.sh` does for Envoy; the
script then re-runs itself with that venv's Python. The schema version is the newest one the
installed package ships that is not newer than the requested one (`-k`, default 1.35.0).

Exits 0 when every object is valid, 1 when any is not, 2 when the validator cannot be
installed or a file cannot be read.
"""
import argparse
import os
import re
import subprocess
import sys
import time
import venv
from pathlib import Path

PACKAGE_VERSION = os.environ.get("KUBERNETES_VALIDATE_VERSION", "1.37.0")
DEFAULT_K8S_VERSION = "1.35.0"
REPO_ROOT = Path(__file__).resolve().parent.parent
INNER_FLAG = "--in-venv"


def version_key(v):
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def ensure_venv(tools_dir: Path) -> Path:
    """Returns the venv's python, installing kubernetes-validate first when needed. Holds a
    lock meanwhile, so concurrent runs (parallel tests) install once."""
    import fcntl
    env_dir = tools_dir / "pyenv"
    python = env_dir / "bin" / "python"
    probe = [str(python), "-c", "import kubernetes_validate"]
    tools_dir.mkdir(parents=True, exist_ok=True)
    with open(tools_dir / "pyenv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
            return python
        return install(env_dir, python, probe)


def install(env_dir: Path, python: Path, probe) -> Path:
    print(f"validate-manifests: installing kubernetes-validate=={PACKAGE_VERSION} into {env_dir}",
          file=sys.stderr)
    venv.EnvBuilder(with_pip=True).create(env_dir)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    f"kubernetes-validate=={PACKAGE_VERSION}"], check=True, stdout=sys.stderr)
    subprocess.run(probe, check=True)
    return python


# --- format rules the JSON schemas do not carry (k8s.io/apimachinery/pkg/util/validation) ---

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def qualified_name_errors(key):
    prefix, _, name = key.rpartition("/")
    errors = []
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        errors.append(f"prefix {prefix!r} is not a DNS-1123 subdomain")
    if not name or len(name) > 63 or not QUALIFIED_NAME.match(name):
        errors.append(f"name part {name!r} is not a qualified name")
    return errors


def meta_errors(meta, where, name_rule):
    errors = []
    name = meta.get("name", "")
    if name_rule == "dns1035":
        if len(name) > 63 or not DNS1035_LABEL.match(name):
            errors.append(f"{where}.name {name!r} is not a DNS-1035 label (<= 63 chars)")
    elif name_rule == "dns1123label":
        if len(name) > 63 or not DNS1123_LABEL.match(name):
            errors.append(f"{where}.name {name!r} is not a DNS-1123 label (<= 63 chars)")
    elif name_rule == "subdomain":
        if len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
            errors.append(f"{where}.name {name!r} is not a DNS-1123 subdomain")
    for key, value in (meta.get("labels") or {}).items():
        errors += [f"{where}.labels[{key}]: {e}" for e in qualified_name_errors(key)]
        if len(value) > 63 or not LABEL_VALUE.match(value):
            errors.append(f"{where}.labels[{key}]: value {value!r} is not a valid label value")
    for key in (meta.get("annotations") or {}):
        errors += [f"{where}.annotations[{key}]: {e}" for e in qualified_name_errors(key)]
    return errors


def port_name_errors(name, where):
    if name is None:
        return []
    if (len(name) > 15 or not IANA_SVC_NAME.match(name) or "--" in name
            or not re.search(r"[a-z]", name)):
        return [f"{where} {name!r} is not an IANA service name"]
    return []


def format_errors(obj):
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    # Deployments name their pods (and label them with pod-template-hash): DNS-1123 labels
    # keep every derived name valid; Services need DNS-1035 labels.
    rule = {"Service": "dns1035", "Deployment": "dns1123label"}.get(kind, "subdomain")
    errors = meta_errors(meta, "metadata", rule)
    spec = obj.get("spec") or {}
    if kind == "Deployment":
        template = spec.get("template") or {}
        errors += meta_errors(template.get("metadata") or {}, "spec.template.metadata", None)
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            errors.append("spec.selector does not match spec.template.metadata.labels")
        for c in (template.get("spec") or {}).get("containers") or []:
            for p in c.get("ports") or []:
                errors += port_name_errors(p.get("name"), f"container {c.get('name')} port name")
    if kind == "Service":
        ports = spec.get("ports") or []
        if not ports:
            errors.append("spec.ports must not be empty")
        for p in ports:
            name = p.get("name")
            if (name is None and len(ports) > 1) or (
                    name is not None and (len(name) > 63 or not DNS1123_LABEL.match(name))):
                errors.append(f"Service port name {name!r} is not a DNS-1123 label")
    return errors


def strict_schema(schema):
    """A copy of a CRD schema where objects with `properties` admit no other keys."""
    if isinstance(schema, dict):
        out = {k: strict_schema(v) for k, v in schema.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict_schema(v) for v in schema]
    return schema


def crd_schemas(resources):
    """(apiVersion, kind) -> strict openAPIV3Schema, for every CRD among `resources`."""
    schemas = {}
    for obj in resources:
        if obj.get("kind") != "CustomResourceDefinition":
            continue
        spec = obj.get("spec") or {}
        for version in spec.get("versions") or []:
            schema = ((version.get("schema") or {}).get("openAPIV3Schema"))
            if schema:
                key = (f"{spec.get('group')}/{version.get('name')}", spec["names"]["kind"])
                schemas[key] = strict_schema(schema)
    return schemas


def validate_custom(obj, schema):
    import jsonschema
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'.'.join(str(p) for p in e.path)}: {e.message}"
            for e in sorted(validator.iter_errors(body), key=lambda e: list(e.path))]


def validate_in_venv(args) -> int:
    import kubernetes_validate.utils as utils
    from kubernetes_validate.version import __version__

    candidates = [v for v in utils.all_versions()
                  if version_key(v) <= version_key(args.kubernetes_version)]
    if not candidates:
        print(f"validate-manifests: no schema <= {args.kubernetes_version} in "
              f"{utils.all_versions()}")
        return 2
    k8s = max(candidates, key=version_key)
    started = time.monotonic()
    loaded = []
    for path in args.files:
        try:
            loaded.append((path, utils.resources_from_file(str(path))))
        except SystemExit as e:
            print(f"ERROR {e}")
            return 2
    custom = crd_schemas([obj for _, resources in loaded for obj in resources])
    objects = invalid = 0
    for path, resources in loaded:
        for obj in resources:
            objects += 1
            what = f"{path}: {obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
            errors = []
            schema = custom.get((obj.get("apiVersion"), obj.get("kind")))
            try:
                if schema is not None:
                    errors += validate_custom(obj, schema)
                else:
                    utils.validate(obj, k8s, strict=True)
            except utils.ValidationError as e:
                errors.append(f"{'.'.join(str(p) for p in e.path)}: {e.message}")
            except (utils.SchemaNotFoundError, utils.InvalidSchemaError) as e:
                errors.append(e.message)
            errors += format_errors(obj)
            if errors:
                invalid += 1
                for e in errors:
                    print(f"ERROR {what}: {e}")
    elapsed = time.monotonic() - started
    print(f"validate-manifests: kubernetes-validate {__version__}, schema {k8s} (strict): "
          f"{objects} object(s) in {len(args.files)} file(s) ({len(custom)} CRD schema(s)), "
          f"{invalid} invalid, "
          f"{elapsed:.2f}s")
    if objects == 0:
        print("validate-manifests: no objects found")
        return 1
    return 1 if invalid else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools-dir", type=Path, default=REPO_ROOT / ".tools")
    parser.add_argument("-k", "--kubernetes-version", default=DEFAULT_K8S_VERSION)
    parser.add_argument(INNER_FLAG, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    if args.in_venv:
        return validate_in_venv(args)
    try:
        python = ensure_venv(args.tools_dir.resolve())
    except (subprocess.CalledProcessError, OSError) as e:
        print(f"validate-manifests: cannot install kubernetes-validate: {e}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    return subprocess.run([str(python), __file__, INNER_FLAG, *sys.argv[1:]]).returncode


if __name__ == "__main__":
    sys.exit(main())
