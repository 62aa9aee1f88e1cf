"""Would admission let our pods in? The WHOLE pod of every step, as Argo and Kubernetes build it.

A step pod is not our container alone. For every container template, Argo's controller
(v3.7.18, workflow/controller/workflowpod.go, ``createWorkflowPod``) builds a pod with:

- ``initContainers: [init]`` and ``containers: [wait, main]``, where ``init`` and ``wait`` come from
  ``newExecContainer``: image argoexec, and ``resources`` and ``securityContext`` copied verbatim
  from the controller's ``executor`` config (``Config.GetExecutor()``, an empty container by
  default); for container templates nothing else fills them in;
- ``main``: the template's container, renamed ``main``, command prefixed with
  ``/var/run/argo/argoexec emissary --``, plus a ``var-run-argo`` mount;
- volumes ``var-run-argo`` and ``tmp-dir-argo`` (emptyDir) before the template's own; the pod's
  ``securityContext`` from the template, else the workflow's; ``restartPolicy: Never``; the
  service account and ``podPriorityClassName`` of the workflow.

The Indexed Job's pods and the CronJob's pods are their pod templates. Every pod is then checked
against what the receval namespace enforces (its ``pod-security.kubernetes.io/enforce`` label) and
against the prod ResourceQuota, with the rules of ``tests/pod_security.py``; objects come from the
prod overlay as ``kubectl kustomize`` renders it, and from ``receval render``.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pod_security  # noqa: E402
from test_manifests import _kubectl  # noqa: E402

from receval.cluster import manifests  # noqa: E402
from tests import argo_dag  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ARGOEXEC = "quay.io/argoproj/argoexec:v3.7.18"
CONTROLLER_CONFIG = REPO / "k8s" / "argo-controller" / "workflow-controller-configmap.yaml"


@pytest.fixture(scope="module")
def prod() -> dict[str, list[dict[str, Any]]]:
    out = subprocess.run(
        [_kubectl(), "kustomize", str(REPO / "k8s/overlays/prod")], check=True, capture_output=True, text=True
    ).stdout
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in yaml.safe_load_all(out):
        if doc:
            by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def shipped_executor() -> dict[str, Any]:
    """The ``executor`` block this project ships for the workflow controller's ConfigMap."""
    config = yaml.safe_load(CONTROLLER_CONFIG.read_text())
    assert config["kind"] == "ConfigMap" and config["metadata"]["name"] == "workflow-controller-configmap"
    return yaml.safe_load(config["data"]["executor"]) or {}


def _substitute(value: Any, scope: dict[str, str]) -> Any:
    if isinstance(value, str):
        return argo_dag._substitute(value, scope)
    if isinstance(value, list):
        return [_substitute(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, scope) for k, v in value.items()}
    return value


def exec_container(name: str, executor: dict[str, Any]) -> dict[str, Any]:
    """``newExecContainer``: name, argoexec image, and resources/securityContext/args from the config."""
    container: dict[str, Any] = {"name": name, "image": ARGOEXEC, "command": ["argoexec", name]}
    for field in ("resources", "securityContext", "args"):
        if executor.get(field) is not None:
            container[field] = copy.deepcopy(executor[field])
    container["volumeMounts"] = [{"name": "var-run-argo", "mountPath": "/var/run/argo"}]
    if name == "wait":  # the executor image's containers get the tmp-dir-argo emptyDir at /tmp
        container["volumeMounts"].append({"name": "tmp-dir-argo", "mountPath": "/tmp", "subPath": "0"})
    return container


def argo_pod(workflow_template: dict[str, Any], template_name: str, executor: dict[str, Any]) -> dict[str, Any]:
    """The pod Argo creates for container template ``template_name`` (see the module docstring)."""
    spec = workflow_template["spec"]
    (template,) = [t for t in spec["templates"] if t["name"] == template_name]
    scope = {f"workflow.parameters.{k}": v for k, v in manifests._template_defaults(workflow_template).items()}
    scope |= {"workflow.parameters.run-id": "r1", "workflow.parameters.store": "s3://bucket/p",
              "workflow.name": "receval-r1-0000", "workflow.status": "Failed"}  # fmt: skip
    scope |= {f"inputs.parameters.{p['name']}": "0" for p in template.get("inputs", {}).get("parameters", [])}
    main = _substitute(copy.deepcopy(template["container"]), scope)
    main["name"] = "main"
    main["command"] = ["/var/run/argo/argoexec", "emissary", "--", *main.get("command", [])]
    main.setdefault("volumeMounts", []).append({"name": "var-run-argo", "mountPath": "/var/run/argo"})
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": spec.get("serviceAccountName"),
        "volumes": [{"name": "var-run-argo", "emptyDir": {}}, {"name": "tmp-dir-argo", "emptyDir": {}},
                    *spec.get("volumes", [])],  # fmt: skip
        "initContainers": [exec_container("init", executor)],
        "containers": [exec_container("wait", executor), main],
    }
    security = template.get("securityContext") or spec.get("securityContext")
    if security:
        pod_spec["securityContext"] = copy.deepcopy(security)
    if spec.get("podPriorityClassName"):
        pod_spec["priorityClassName"] = spec["podPriorityClassName"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"r1-{template_name}"}, "spec": pod_spec}


def container_templates(workflow_template: dict[str, Any]) -> list[str]:
    return [t["name"] for t in workflow_template["spec"]["templates"] if "container" in t]


def enforced_level(prod: dict[str, list[dict[str, Any]]]) -> str:
    (namespace,) = prod["Namespace"]
    return namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]


def all_pods(prod: dict[str, list[dict[str, Any]]], executor: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every pod the prod deployment makes: one per step template, the CronJob's, an Indexed Job's."""
    (template,) = prod["WorkflowTemplate"]
    pods = {f"argo:{name}": argo_pod(template, name, executor) for name in container_templates(template)}
    (cronjob,) = prod["CronJob"]
    pods["cronjob"] = {"kind": "Pod", "metadata": {}, "spec": cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]}
    job = manifests.indexed_evaluate_job(manifests.PipelineParameters(run_id="r1", store="s3://bucket/p"), "pop")
    pods["indexed-job"] = {"kind": "Pod", "metadata": {}, "spec": job["spec"]["template"]["spec"]}
    return pods


def test_the_namespace_enforces_restricted_and_prod_has_a_quota(prod):
    assert enforced_level(prod) == "restricted"
    (quota,) = prod["ResourceQuota"]
    assert pod_security.quota_requirements(quota) == [
        ("limits", "cpu"), ("limits", "memory"), ("requests", "cpu"), ("requests", "memory")
    ]  # fmt: skip


def test_every_pod_is_admitted_with_the_shipped_executor_config(prod):
    (quota,) = prod["ResourceQuota"]
    level = enforced_level(prod)
    pods = all_pods(prod, shipped_executor())
    assert len([p for p in pods if p.startswith("argo:")]) >= 7  # prepare x2, train, predict, evaluate, aggregate, mark-failed
    refused = {
        name: pod_security.violations(pod, level) + pod_security.quota_violations(pod, quota)
        for name, pod in pods.items()
    }
    assert not any(refused.values()), {k: v for k, v in refused.items() if v}


def test_argo_default_executor_would_be_refused(prod):
    """What a default Argo install gives (an empty executor block): every step pod is refused,
    by Pod Security and by the quota, for its init and wait containers. The checks can fail."""
    (quota,) = prod["ResourceQuota"]
    (template,) = prod["WorkflowTemplate"]
    for name in container_templates(template):
        pod = argo_pod(template, name, executor={})
        pss = pod_security.violations(pod, enforced_level(prod))
        assert any("allowPrivilegeEscalation" in v and "initContainers[init]" in v for v in pss), pss
        assert any("capabilities.drop lacks ALL" in v and "containers[wait]" in v for v in pss), pss
        assert not [v for v in pss if "[main]" in v], pss  # our own container was always fine
        missing = pod_security.quota_violations(pod, quota)
        assert "must specify limits.cpu initContainers[init]" in missing and "must specify requests.memory containers[wait]" in missing


def test_the_limit_range_alone_satisfies_the_quota_but_not_pod_security(prod):
    """Why docs/deploy.md says to apply the executor block: the LimitRange is only a second line."""
    (quota,) = prod["ResourceQuota"]
    (limit_range,) = prod["LimitRange"]
    (template,) = prod["WorkflowTemplate"]
    pod = pod_security.apply_limit_range(argo_pod(template, "train", executor={}), limit_range)
    assert pod_security.quota_violations(pod, quota) == []
    assert pod_security.violations(pod, "restricted")
    # and it does not override what a container declares (train's own 2 CPU / 8Gi stay)
    (main,) = [c for c in pod["spec"]["containers"] if c["name"] == "main"]
    assert main["resources"]["limits"] == {"cpu": "2", "memory": "8Gi"}


def test_rendered_objects_are_admitted_too(tmp_path, prod):
    """`receval render` output (another namespace, a run with Indexed Jobs) builds the same pods."""
    from receval.cli import main

    out = tmp_path / "r"
    with pytest.raises(SystemExit) as exit_info:
        sys.argv = ["receval"]
        main(["render", "--out", str(out), "--store", "s3://evals/x", "--namespace", "ml-eval", "--run-id", "r1",
              "--indexed-jobs", "--algorithm", "pop,ub"])  # fmt: skip
    assert exit_info.value.code in (0, None)
    docs = [yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml"))]
    (quota,) = prod["ResourceQuota"]
    (namespace,) = [d for d in docs if d["kind"] == "Namespace"]
    level = namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
    (template,) = [d for d in docs if d["kind"] == "WorkflowTemplate"]
    pods = [argo_pod(template, name, shipped_executor()) for name in container_templates(template)]
    pods += [{"kind": "Pod", "metadata": {}, "spec": d["spec"]["template"]["spec"]} for d in docs if d["kind"] == "Job"]
    pods += [{"kind": "Pod", "metadata": {}, "spec": d["spec"]["jobTemplate"]["spec"]["template"]["spec"]}
             for d in docs if d["kind"] == "CronJob"]  # fmt: skip
    assert len(pods) >= 7 + 2 + 1
    for pod in pods:
        assert pod_security.violations(pod, level) + pod_security.quota_violations(pod, quota) == []


def test_the_rules_catch_each_restricted_control():
    """Each encoded control refuses what the standard forbids (a checker that cannot fail is no check)."""
    good = {
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": False,
                                                             "capabilities": {"drop": ["ALL"]}}}],
        }
    }  # fmt: skip
    assert pod_security.restricted_violations(good) == []
    mutations = {
        "hostNetwork": lambda p: p["spec"].__setitem__("hostNetwork", True),
        "hostPath": lambda p: p["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "nfs volume": lambda p: p["spec"]["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
        "privileged": lambda p: p["spec"]["containers"][0]["securityContext"].__setitem__("privileged", True),
        "escalation": lambda p: p["spec"]["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
        "root": lambda p: p["spec"]["securityContext"].pop("runAsNonRoot"),
        "uid 0": lambda p: p["spec"]["containers"][0]["securityContext"].__setitem__("runAsUser", 0),
        "no seccomp": lambda p: p["spec"]["securityContext"].pop("seccompProfile"),
        "unconfined": lambda p: p["spec"]["containers"][0]["securityContext"].__setitem__("seccompProfile", {"type": "Unconfined"}),
        "no drop": lambda p: p["spec"]["containers"][0]["securityContext"].pop("capabilities"),
        "add NET_ADMIN": lambda p: p["spec"]["containers"][0]["securityContext"]["capabilities"].__setitem__("add", ["NET_ADMIN"]),
        "hostPort": lambda p: p["spec"]["containers"][0].__setitem__("ports", [{"containerPort": 80, "hostPort": 80}]),
        "init container": lambda p: p["spec"].__setitem__("initContainers", [{"name": "i"}]),
    }  # fmt: skip
    for name, mutate in mutations.items():
        pod = copy.deepcopy(good)
        mutate(pod)
        assert pod_security.restricted_violations(pod), name


def test_the_dev_overlays_own_pods_are_admitted_too():
    """kind/minikube enforce the same namespace label: SeaweedFS and its bucket Job must pass it."""
    out = subprocess.run(
        [_kubectl(), "kustomize", str(REPO / "k8s/overlays/dev")], check=True, capture_output=True, text=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    (namespace,) = [d for d in docs if d["kind"] == "Namespace"]
    level = namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
    pods = [d["spec"]["template"] for d in docs if d["kind"] in ("Deployment", "Job")]
    assert len(pods) == 2
    for pod in pods:
        assert pod_security.violations({"metadata": pod.get("metadata", {}), "spec": pod["spec"]}, level) == []
