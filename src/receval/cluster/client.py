"""Talking to the Kubernetes API: submit a run, apply the nightly schedule, read a run's progress.

Everything goes through the official ``kubernetes`` client (kubeconfig, or the in-cluster service
account when running in a pod). Every API failure becomes one :class:`~receval.errors.ClusterError`
line that says what to do: no cluster, credentials rejected, missing RBAC permission, Argo not
installed, WorkflowTemplate not applied.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from receval import names
from receval.cluster import manifests
from receval.errors import ClusterError

_IN_CLUSTER_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
_TIMEOUT = 30
#: Pipeline steps in DAG order, and the WorkflowTemplate templates that implement each.
STEP_TEMPLATES: dict[str, tuple[str, ...]] = {
    "prepare": ("prepare-from-config", "prepare-from-dataset", "prepare-finish"),
    "train": ("train",),
    "predict": ("predict",),
    "evaluate": ("evaluate",),
    "aggregate": ("aggregate",),
}
FINISHED_PHASES = ("Succeeded", "Failed", "Error")


class AlreadyExistsError(ClusterError):
    """The object's fixed name is taken (409): for a Workflow, the run id was submitted before."""


@dataclass(frozen=True)
class StepProgress:
    """How far one pipeline step is: pods succeeded, failed and running out of the expected total."""

    step: str
    total: int
    succeeded: int = 0
    failed: int = 0
    running: int = 0

    @property
    def pending(self) -> int:
        return max(self.total - self.succeeded - self.failed - self.running, 0)


def _step_of(template_name: str) -> str | None:
    for step, names in STEP_TEMPLATES.items():
        if template_name in names:
            return step
    return None


def step_progress(workflow: Mapping[str, Any]) -> list[StepProgress]:
    """Per-step progress of a receval Workflow, from its ``status.nodes``.

    A retried step appears as a ``Retry`` node with one ``Pod`` child per attempt; only the
    ``Retry`` node counts, so a shard that succeeded on its second attempt counts once. Totals come
    from the run's shard count and algorithms (its arguments over the template defaults): steps not
    yet started have no nodes.
    """
    arguments = {p["name"]: str(p.get("value", "")) for p in workflow.get("spec", {}).get("arguments", {}).get("parameters", [])}
    values = manifests._template_defaults(manifests.workflow_template()) | arguments
    try:
        algorithms = len(json.loads(values.get("algorithms", "[]")))
        shards = int(values.get("shards", "1"))
    except (ValueError, TypeError):
        algorithms, shards = 0, 0
    totals = {"prepare": 1, "train": algorithms, "predict": algorithms * shards, "evaluate": algorithms * shards, "aggregate": 1}
    nodes = dict(workflow.get("status", {}).get("nodes") or {})
    attempts = {child for node in nodes.values() if node.get("type") == "Retry" for child in node.get("children", [])}
    counts = {step: {"Succeeded": 0, "Failed": 0, "Running": 0} for step in STEP_TEMPLATES}
    for node_id, node in nodes.items():
        if node_id in attempts or node.get("type") not in ("Pod", "Retry"):
            continue
        step = _step_of(node.get("templateName", ""))
        if step is None:
            continue
        phase = node.get("phase", "Pending")
        key = "Failed" if phase in ("Failed", "Error") else phase
        if key in counts[step]:
            counts[step][key] += 1
    return [
        StepProgress(step, max(totals[step], sum(c.values())), c["Succeeded"], c["Failed"], c["Running"])
        for step, c in counts.items()
    ]


def _api_error(exc: Exception, action: str, namespace: str, host: str) -> ClusterError:
    """One line saying what went wrong and what to do about it."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error

    if isinstance(exc, ApiException):
        status = exc.status
        message = ""
        try:
            message = json.loads(exc.body or "{}").get("message", "")
        except (ValueError, AttributeError):
            message = str(exc.body or "")[:200]
        if status == 401:
            return ClusterError(
                f"{action}: the Kubernetes API at {host} rejected the credentials (401); refresh your kubeconfig "
                "token or pick another --context"
            )
        if status == 403:
            return ClusterError(
                f"{action}: forbidden (403) in namespace {namespace}: {message or 'no RBAC permission'}; apply "
                "k8s/base/rbac.yaml and use the receval-submitter account, or ask a cluster admin for the permission"
            )
        if status == 409:
            return AlreadyExistsError(f"{action}: {message or 'already exists'} (409) in namespace {namespace}")
        if status == 404 and "could not find the requested resource" in message:
            return ClusterError(
                f"{action}: the cluster has no Argo Workflows API (argoproj.io/v1alpha1 not found, 404); install "
                f"Argo Workflows >= {manifests.MIN_ARGO} first (see docs/deploy.md)"
            )
        return ClusterError(f"{action}: the Kubernetes API answered {status} {exc.reason}: {message}".rstrip(": "))
    if isinstance(exc, (Urllib3Error, OSError)):
        reason = getattr(exc, "reason", None) or exc
        return ClusterError(
            f"{action}: cannot reach the Kubernetes API at {host} ({type(reason).__name__}); is the cluster "
            "running and are --kubeconfig/--context right? (try: kubectl cluster-info)"
        )
    return ClusterError(f"{action}: {exc}")


class ClusterClient:
    """The receval objects in one namespace of one cluster.

    Parameters
    ----------
    kubeconfig : str or None
        Path of a kubeconfig file; default ``$KUBECONFIG`` or ``~/.kube/config``, or the pod's
        service account when running inside a cluster without either.
    context : str or None
        kubeconfig context; default its current context.
    namespace : str or None
        Namespace of the receval objects; default the context's namespace, the pod's namespace, or
        ``receval``.
    """

    def __init__(self, kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None):
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        in_cluster = (
            kubeconfig is None
            and context is None
            and "KUBECONFIG" not in os.environ
            and not os.path.exists(os.path.expanduser("~/.kube/config"))
            and "KUBERNETES_SERVICE_HOST" in os.environ
        )
        try:
            if in_cluster:
                configuration = client.Configuration()
                config.load_incluster_config(client_configuration=configuration)
                self.api_client = client.ApiClient(configuration)
                default_namespace = _read_text(_IN_CLUSTER_NAMESPACE)
            else:
                self.api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
                _, current = config.list_kube_config_contexts(config_file=kubeconfig)
                if context is not None:
                    contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
                    current = next(c for c in contexts if c["name"] == context)
                default_namespace = current.get("context", {}).get("namespace")
        except (ConfigException, OSError, StopIteration, TypeError) as exc:
            where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise ClusterError(
                f"no usable Kubernetes configuration ({where}, context {context or 'current'}): "
                f"{' '.join(str(exc).split())[:160]}; pass --kubeconfig/--context or run inside the cluster"
            ) from None
        self.api_client.configuration.retries = 1  # a refused connection should fail fast, not back off
        # The namespace becomes part of every API path: it must be a DNS label, never "a/../b".
        self.namespace = names.check_namespace(namespace or default_namespace or manifests.DEFAULT_NAMESPACE)
        self.host = self.api_client.configuration.host
        self.custom = client.CustomObjectsApi(self.api_client)
        self.batch = client.BatchV1Api(self.api_client)

    # -- helpers --------------------------------------------------------------------------------
    def _call(self, action: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, _request_timeout=_TIMEOUT, **kwargs)
        except Exception as exc:  # translated into one line; the traceback helps no user here
            from kubernetes.client.exceptions import ApiException
            from urllib3.exceptions import HTTPError as Urllib3Error

            if isinstance(exc, (ApiException, Urllib3Error, OSError)):
                raise _api_error(exc, action, self.namespace, self.host) from None
            raise

    def _exists(self, action: str, function: Any, *args: Any) -> Any | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return function(*args, _request_timeout=_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404 and "could not find the requested resource" not in (exc.body or ""):
                return None
            raise _api_error(exc, action, self.namespace, self.host) from None
        except Exception as exc:
            from urllib3.exceptions import HTTPError as Urllib3Error

            if isinstance(exc, (Urllib3Error, OSError)):
                raise _api_error(exc, action, self.namespace, self.host) from None
            raise

    def _argo(self, method: str, plural: str, *args: Any, action: str, **kwargs: Any) -> Any:
        function = getattr(self.custom, method)
        return self._call(action, function, manifests.API_GROUP, manifests.API_VERSION, self.namespace, plural, *args, **kwargs)

    # -- workflows ------------------------------------------------------------------------------
    def submit(self, workflow: Mapping[str, Any]) -> str:
        """Create ``workflow`` after checking that its WorkflowTemplate exists; return its name.

        A Workflow of the same name (the same run id) raises :class:`AlreadyExistsError`.
        """
        template = workflow["spec"]["workflowTemplateRef"]["name"]
        action = f"submit run {workflow['metadata']['labels'].get(manifests.RUN_ID_LABEL)}"
        found = self._exists(
            action,
            self.custom.get_namespaced_custom_object,
            manifests.API_GROUP, manifests.API_VERSION, self.namespace, "workflowtemplates", template,
        )  # fmt: skip
        if found is None:
            raise ClusterError(
                f"{action}: WorkflowTemplate {template} not found in namespace {self.namespace}; apply it first "
                "(kubectl apply -k k8s/overlays/prod, or receval render) or pass --namespace"
            )
        body = dict(workflow)
        body["metadata"] = {**workflow["metadata"], "namespace": self.namespace}
        created = self._argo("create_namespaced_custom_object", "workflows", body, action=action)
        return created["metadata"]["name"]

    def get_workflow(self, name: str) -> dict[str, Any]:
        return self._argo("get_namespaced_custom_object", "workflows", name, action=f"read workflow {name}")

    def latest_workflow(self, run_id: str | None = None) -> dict[str, Any] | None:
        """The newest receval Workflow (of ``run_id`` if given), or None."""
        selector = f"{manifests.RUN_ID_LABEL}={run_id}" if run_id else f"{manifests.APP_LABEL}=receval"
        listed = self._argo(
            "list_namespaced_custom_object", "workflows", action=f"list workflows of run {run_id or '(any)'}",
            label_selector=selector,
        )  # fmt: skip
        items = listed.get("items", [])
        if not items:
            return None
        return max(items, key=lambda w: (w["metadata"].get("creationTimestamp", ""), w["metadata"]["name"]))

    # -- schedules ------------------------------------------------------------------------------
    def apply_cronjob(self, cronjob: Mapping[str, Any], *, keep_suspend: bool = False) -> str:
        """Create the CronJob, or patch it if it exists; return ``"created"`` or ``"updated"``.

        With ``keep_suspend`` an existing CronJob keeps its suspended/active state.
        """
        name = cronjob["metadata"]["name"]
        action = f"schedule CronJob {name}"
        body = json.loads(json.dumps(cronjob))
        body["metadata"]["namespace"] = self.namespace
        if self._exists(action, self.batch.read_namespaced_cron_job, name, self.namespace) is None:
            self._call(action, self.batch.create_namespaced_cron_job, self.namespace, body)
            return "created"
        if keep_suspend:
            body["spec"].pop("suspend", None)
        self._call(action, self.batch.patch_namespaced_cron_job, name, self.namespace, body)
        return "updated"

    def cronjob_active(self, name: str) -> bool | None:
        """None if there is no such CronJob, else whether it is not suspended."""
        found = self._exists(f"read CronJob {name}", self.batch.read_namespaced_cron_job, name, self.namespace)
        return None if found is None else not bool(found.spec.suspend)

    def cron_workflow_active(self, name: str) -> bool | None:
        """None if there is no such CronWorkflow, else whether it is not suspended."""
        found = self._exists(
            f"read CronWorkflow {name}", self.custom.get_namespaced_custom_object,
            manifests.API_GROUP, manifests.API_VERSION, self.namespace, "cronworkflows", name,
        )  # fmt: skip
        return None if found is None else not bool(found.get("spec", {}).get("suspend"))

    def suspend_cronjob(self, name: str, suspend: bool) -> None:
        action = f"{'suspend' if suspend else 'resume'} CronJob {name}"
        if self._exists(action, self.batch.read_namespaced_cron_job, name, self.namespace) is None:
            raise ClusterError(f"{action}: no such CronJob in namespace {self.namespace}; create it with receval schedule --at HH:MM")
        self._call(action, self.batch.patch_namespaced_cron_job, name, self.namespace, {"spec": {"suspend": suspend}})

    def delete_cronjob(self, name: str) -> bool:
        """Delete the CronJob; False if there was none."""
        action = f"delete CronJob {name}"
        if self._exists(action, self.batch.read_namespaced_cron_job, name, self.namespace) is None:
            return False
        self._call(action, self.batch.delete_namespaced_cron_job, name, self.namespace)
        return True

    def apply_cron_workflow(self, cron_workflow: Mapping[str, Any], *, keep_suspend: bool = False) -> str:
        """Create the CronWorkflow or patch it (JSON merge patch); ``"created"`` or ``"updated"``."""
        name = cron_workflow["metadata"]["name"]
        action = f"schedule CronWorkflow {name}"
        body = json.loads(json.dumps(cron_workflow))
        body["metadata"]["namespace"] = self.namespace
        existing = self._exists(
            action, self.custom.get_namespaced_custom_object,
            manifests.API_GROUP, manifests.API_VERSION, self.namespace, "cronworkflows", name,
        )  # fmt: skip
        if existing is None:
            self._argo("create_namespaced_custom_object", "cronworkflows", body, action=action)
            return "created"
        if keep_suspend:
            body["spec"].pop("suspend", None)
        self._argo("patch_namespaced_custom_object", "cronworkflows", name, body, action=action)
        return "updated"

    def suspend_cron_workflow(self, name: str, suspend: bool) -> None:
        action = f"{'suspend' if suspend else 'resume'} CronWorkflow {name}"
        existing = self._exists(
            action, self.custom.get_namespaced_custom_object,
            manifests.API_GROUP, manifests.API_VERSION, self.namespace, "cronworkflows", name,
        )  # fmt: skip
        if existing is None:
            raise ClusterError(
                f"{action}: no such CronWorkflow in namespace {self.namespace}; create it with receval schedule --argo-cron --at HH:MM"
            )
        self._argo("patch_namespaced_custom_object", "cronworkflows", name, {"spec": {"suspend": suspend}}, action=action)

    def delete_cron_workflow(self, name: str) -> bool:
        action = f"delete CronWorkflow {name}"
        existing = self._exists(
            action, self.custom.get_namespaced_custom_object,
            manifests.API_GROUP, manifests.API_VERSION, self.namespace, "cronworkflows", name,
        )  # fmt: skip
        if existing is None:
            return False
        self._argo("delete_namespaced_custom_object", "cronworkflows", name, action=action)
        return True


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        return None
