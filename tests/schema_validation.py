"""Strict offline validation of the manifests we ship and render (test helper, not a test).

Core Kubernetes kinds go through ``kubernetes-validate`` in strict mode (unknown fields rejected) at
the minimum Kubernetes version we support. Argo kinds are checked twice, because the project targets
Argo Workflows v3.7 and must stay valid on v4:

- against the ``openAPIV3Schema`` of the v4.1.2 CRDs (what the API server enforces), and
- against the v3.7.18 ``schema.json``,

each made strict the way ``kubectl --validate=strict`` behaves: ``additionalProperties: false`` on
every object schema that lists ``properties`` (except below ``x-kubernetes-preserve-unknown-fields``),
int-or-string widened to both types, ``nullable`` adding the null type. ``metadata`` stays loose
because the CRD schema does not describe it.
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

MIN_KUBERNETES = "1.29.0"
SCHEMAS = Path(__file__).resolve().parents[1] / ".." / "shared" / "schemas" / "argo"
ARGO_KINDS = ("Workflow", "WorkflowTemplate", "CronWorkflow", "ClusterWorkflowTemplate")
_CRD_FILE = {
    "Workflow": "argoproj.io_workflows.yaml.gz",
    "WorkflowTemplate": "argoproj.io_workflowtemplates.yaml.gz",
    "CronWorkflow": "argoproj.io_cronworkflows.yaml.gz",
    "ClusterWorkflowTemplate": "argoproj.io_clusterworkflowtemplates.yaml.gz",
}


def _strict_openapi(node: Any) -> Any:
    """Return a JSON-Schema copy of a CRD openAPIV3Schema node, made strict."""
    if isinstance(node, list):
        return [_strict_openapi(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("x-kubernetes-preserve-unknown-fields"):
        loose = {k: v for k, v in node.items() if k in ("description",)}
        return loose  # anything goes below, exactly like the API server
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _strict_openapi(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _strict_openapi(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_strict_openapi(v) for v in value]
        elif key.startswith("x-kubernetes-") or key == "nullable":
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


@functools.cache
def _crd_validator(kind: str) -> jsonschema.Draft7Validator:
    with gzip.open(SCHEMAS / "crds-full" / _CRD_FILE[kind], "rt") as fh:
        crd = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # 2.8 MB: libyaml is 10x faster
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = _strict_openapi(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def _strict_definitions(definitions: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(definitions)
    for name, schema in out.items():
        if name.endswith("intstr.IntOrString"):
            out[name] = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
        elif name.endswith("resource.Quantity"):
            out[name] = {"anyOf": [{"type": "number"}, {"type": "string"}]}
        elif name.endswith("meta.v1.ObjectMeta"):
            out[name] = {"type": "object"}
        elif isinstance(schema, dict) and "properties" in schema:
            schema.setdefault("additionalProperties", False)
    return out


@functools.cache
def _v37_validator(kind: str) -> jsonschema.Draft7Validator:
    document = json.loads((SCHEMAS / "v3.7.18" / "schema.json").read_text())
    definitions = _strict_definitions(document["definitions"])
    schema = {"$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}", "definitions": definitions}
    return jsonschema.Draft7Validator(schema)


def _format(prefix: str, error: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "<root>"
    return f"{prefix} {where}: {error.message}"


def argo_errors(doc: dict[str, Any]) -> list[str]:
    """Every strict-schema error of an Argo object, against Argo v4.1.2 CRDs and v3.7.18."""
    kind = doc.get("kind")
    if kind not in ARGO_KINDS:
        raise ValueError(f"not an Argo kind: {kind}")
    errors = [_format("argo-v4.1.2-crd", e) for e in _crd_validator(kind).iter_errors(doc)]
    errors += [_format("argo-v3.7.18", e) for e in _v37_validator(kind).iter_errors(doc)]
    return errors


def kubernetes_errors(doc: dict[str, Any], version: str = MIN_KUBERNETES) -> list[str]:
    """The first strict-schema error of a core Kubernetes object (kubernetes-validate), if any."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(str(p) for p in exc.path) or "<root>"
        return [f"kubernetes-{version} {path}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:  # a kind we never expect: fail loudly
        return [f"no Kubernetes {version} schema for {doc.get('apiVersion')}/{doc.get('kind')}: {exc}"]
    return []


def manifest_errors(doc: dict[str, Any]) -> list[str]:
    """Validate one manifest with the checker that matches its apiVersion."""
    if str(doc.get("apiVersion", "")).startswith("argoproj.io/"):
        return argo_errors(doc)
    return kubernetes_errors(doc)


def assert_valid(doc: dict[str, Any], where: str = "") -> None:
    errors = manifest_errors(doc)
    name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name') or doc.get('metadata', {}).get('generateName')}"
    assert not errors, f"{where} {name} is invalid:\n" + "\n".join(errors[:20])
