"""The deployment manifests shipped with the package, and the objects derived from them.

The YAML files under the repository's ``argo/`` and ``k8s/`` folders are the single source of truth;
the package ships them (``receval/deploy/argo`` and ``receval/deploy/k8s`` are symlinks to those folders
in a checkout and real files in a wheel), and everything here loads those very files and only sets
parameters on them: the Workflow that ``receval submit`` creates, the CronJob or CronWorkflow that
``receval schedule`` applies, and what ``receval render`` writes for GitOps.

Argo interprets the WorkflowTemplate's DAG; the tests' own small interpreter (``tests/argo_dag.py``)
runs its step commands locally, exactly as the pods would.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from receval import names
from receval.errors import ConfigError

API_GROUP = "argoproj.io"
API_VERSION = "v1alpha1"
TEMPLATE_NAME = "receval-pipeline"
CRONJOB_NAME = "receval-nightly"
DEFAULT_NAMESPACE = "receval"
RUN_ID_LABEL = "receval.io/run-id"
APP_LABEL = "app.kubernetes.io/name"
#: The step images, by the step they are built for (docker/Dockerfile targets).
IMAGES = ("train", "predict", "evaluate")
MIN_KUBERNETES = "1.29"
MIN_ARGO = "3.7"
#: Most shards of one run: Argo keeps about 4 nodes per shard and algorithm in the Workflow's
#: ``status.nodes`` (predict and evaluate, each a retry node and its pod), and the Workflow object
#: must stay well below etcd's 1.5 MB request limit without node-status offloading
#: (docs/deploy.md, "Design limits").
MAX_SHARDS = 512
_HH_MM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


# --------------------------------------------------------------------------------------------
# Loading the shipped files
# --------------------------------------------------------------------------------------------
def deploy_root() -> Path:
    """The folder holding ``argo/`` and ``k8s/`` in the installed package."""
    return Path(str(resources.files("receval") / "deploy"))


def load_documents(relative_path: str) -> list[dict[str, Any]]:
    """All YAML documents of a shipped manifest, e.g. ``load_documents("k8s/base/rbac.yaml")``."""
    path = deploy_root() / relative_path
    if not path.is_file():
        raise ConfigError(f"{path}: shipped manifest missing; reinstall receval (the package data is incomplete)")
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def load_document(relative_path: str) -> dict[str, Any]:
    """The single YAML document of a shipped manifest."""
    docs = load_documents(relative_path)
    if len(docs) != 1:
        raise ConfigError(f"{relative_path}: expected one YAML document, found {len(docs)}")
    return docs[0]


def workflow_template() -> dict[str, Any]:
    """The receval-pipeline WorkflowTemplate as shipped (``argo/workflowtemplate.yaml``)."""
    return load_document("argo/workflowtemplate.yaml")


class _NoAliasDumper(yaml.SafeDumper):
    """Plain YAML: the shipped files share blocks through anchors; rendered files spell them out."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(documents: Iterable[Mapping[str, Any]]) -> str:
    """YAML text of ``documents`` separated by ``---``, keys in their original order."""
    return yaml.dump_all(
        [dict(d) for d in documents], Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False, width=120
    )


# --------------------------------------------------------------------------------------------
# Value objects
# --------------------------------------------------------------------------------------------
def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it can be a label value and a folder name, else raise ConfigError."""
    return names.check_run_id(run_id)


def workflow_name(run_id: str) -> str:
    """The Workflow of run ``run_id``: fixed, so a second submission of one run id gets 409 AlreadyExists.

    ``receval-<run-id>-<hash>``, a DNS-1123 label of at most 63 characters (Argo copies it into
    the ``workflows.argoproj.io/workflow`` label of every pod).
    """
    return names.object_name("receval", check_run_id(run_id))


def known_algorithms(labels: Iterable[str]) -> None:
    """Refuse what ``receval run`` refuses for algorithms given by name: an unknown one, a bad label."""
    from receval.recommenders import algorithm_class

    for label in labels:
        algorithm_class(label)
        names.check_label(label, "--algorithm: label")


#: The step images whose digest can be pinned (``train-image-digest`` ... parameters).
def _digest_parameter(step: str) -> str:
    return f"{step}-image-digest"


@dataclass(frozen=True)
class PipelineParameters:
    """Values of the WorkflowTemplate's parameters; ``None`` keeps the template's default.

    Parameters
    ----------
    run_id : str or None
        Run folder name under ``STORE/runs/``; required to submit, not to render.
    store : str or None
        ``s3://bucket/prefix`` where run folders live.
    dataset, config_uri : str or None
        What ``receval prepare`` reads: a built-in dataset name, or a configuration URI (wins).
    shards : int or None
        Number of user shards of the predict and evaluate fan-outs.
    algorithms : tuple of str or None
        One train/predict/evaluate branch per algorithm.
    cutoffs : tuple of int or None
        Ranking cutoffs.
    image_registry, image_tag : str or None
        Where the receval step images come from.
    image_digests : tuple of (step, digest) or None
        ``(("train", "sha256:..."), ...)``: pull these images by digest (a tag can move).
    gate_rules : str or None
        Regression gate rules (``;``-separated) of the ``gate`` step after aggregate; empty: no gate.
    """

    run_id: str | None = None
    store: str | None = None
    dataset: str | None = None
    config_uri: str | None = None
    shards: int | None = None
    algorithms: tuple[str, ...] | None = None
    cutoffs: tuple[int, ...] | None = None
    image_registry: str | None = None
    image_tag: str | None = None
    image_digests: tuple[tuple[str, str], ...] | None = None
    gate_rules: str | None = None

    def __post_init__(self) -> None:
        if self.run_id is not None:
            check_run_id(self.run_id)
        if self.store is not None and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,62}(/.*)?", self.store):
            raise ConfigError(
                f"--store {self.store!r}: pods need object storage, give s3://bucket/prefix "
                "(bucket: 3-63 lowercase letters, digits, '.' or '-')"
            )
        if self.shards is not None and not 1 <= self.shards <= MAX_SHARDS:
            raise ConfigError(
                f"--shards {self.shards}: must be between 1 and {MAX_SHARDS} (each shard adds Argo nodes to the "
                "Workflow object; see docs/deploy.md, Design limits)"
            )
        if self.algorithms is not None:
            if not self.algorithms:
                raise ConfigError("--algorithm: give at least one algorithm, e.g. pop,ub")
            for name in self.algorithms:
                names.check_label(name, "--algorithm: label")
            if len(set(self.algorithms)) != len(self.algorithms):
                raise ConfigError(f"--algorithm {','.join(self.algorithms)}: an algorithm is listed twice")
        if self.cutoffs is not None:
            from receval.metrics.options import check_cutoffs

            check_cutoffs(self.cutoffs)  # the rule of `receval run`: a cutoff of 10^10 fails here, not in a pod
        if self.image_tag is not None:
            names.check_image_tag(self.image_tag)
        if self.image_registry is not None:
            names.check_image_registry(self.image_registry)
        for step, digest in self.image_digests or ():
            if step not in IMAGES:
                raise ConfigError(f"--image-digest {step}=...: the images are {', '.join(IMAGES)}")
            names.check_image_digest(digest, f"--image-digest {step}=")
        if self.gate_rules:
            from receval.metrics.rules import parse_rules

            parse_rules(self.gate_rules, source="--gate-rules")  # a bad rule fails now, not after the run
            if "'" in self.gate_rules:  # the template's `when` quotes the parameter in single quotes
                raise ConfigError(f"--gate-rules {self.gate_rules!r}: rules cannot contain a single quote")

    @classmethod
    def from_text(
        cls,
        *,
        run_id: str | None = None,
        store: str | None = None,
        dataset: str | None = None,
        config_uri: str | None = None,
        shards: int | None = None,
        algorithms: str | None = None,
        cutoffs: str | None = None,
        image_registry: str | None = None,
        image_tag: str | None = None,
        image_digests: Iterable[str] | None = None,
        gate_rules: str | None = None,
    ) -> PipelineParameters:
        """Build from command-line text; empty strings (unset ConfigMap keys) count as not given."""

        def given(value: str | None) -> str | None:
            return value.strip() if value and value.strip() else None

        algorithm_list = None
        if given(algorithms):
            algorithm_list = tuple(a.strip() for a in algorithms.split(",") if a.strip())  # type: ignore[union-attr]
        cutoff_list = None
        if given(cutoffs):
            try:
                cutoff_list = tuple(int(k) for k in cutoffs.split(",") if k.strip())  # type: ignore[union-attr]
            except ValueError:
                raise ConfigError(f"--cutoff {cutoffs!r}: expected integers separated by commas, e.g. 5,10,20") from None
        digests = None
        if image_digests:
            pairs = []
            for text in (part.strip() for value in image_digests for part in value.split(",") if part.strip()):
                step, sep, digest = text.partition("=")
                if not sep:
                    raise ConfigError(f"--image-digest {text!r}: expected STEP=sha256:<hex>, e.g. train=sha256:...")
                pairs.append((step.strip(), digest.strip()))
            digests = tuple(pairs)
        return cls(
            run_id=given(run_id),
            store=given(store),
            dataset=given(dataset),
            config_uri=given(config_uri),
            shards=shards,
            algorithms=algorithm_list,
            cutoffs=cutoff_list,
            image_registry=given(image_registry),
            image_tag=given(image_tag),
            image_digests=digests,
            gate_rules=given(gate_rules),
        )

    def arguments(self) -> dict[str, str]:
        """The given values as WorkflowTemplate parameters (name → string value)."""
        values = {
            "run-id": self.run_id,
            "store": self.store,
            "dataset": self.dataset,
            "config-uri": self.config_uri,
            "shards": None if self.shards is None else str(self.shards),
            "algorithms": None if self.algorithms is None else json.dumps(list(self.algorithms)),
            "cutoffs": None if self.cutoffs is None else ",".join(str(k) for k in self.cutoffs),
            "image-registry": self.image_registry,
            "image-tag": self.image_tag,
            "gate-rules": self.gate_rules,
        }
        for step, digest in self.image_digests or ():
            values[_digest_parameter(step)] = f"@{digest}"
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class NightlySchedule:
    """A daily run at ``at`` (``HH:MM``) in ``timezone`` (an IANA name such as ``Europe/Madrid``)."""

    at: str = "02:30"
    timezone: str = "Etc/UTC"

    def __post_init__(self) -> None:
        if not _HH_MM.fullmatch(self.at or ""):
            raise ConfigError(f"--at {self.at!r}: expected HH:MM on a 24-hour clock, e.g. 02:30")
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"--timezone {self.timezone!r}: not an IANA time zone, e.g. Europe/Madrid or Etc/UTC") from None

    @property
    def cron(self) -> str:
        """Standard five-field cron expression, e.g. ``30 2 * * *``."""
        hour, minute = (int(part) for part in self.at.split(":"))
        return f"{minute} {hour} * * *"


# --------------------------------------------------------------------------------------------
# Objects derived from the shipped files
# --------------------------------------------------------------------------------------------
def _image(params: PipelineParameters, step: str) -> str:
    defaults = _template_defaults(workflow_template())
    registry = params.image_registry or defaults["image-registry"]
    tag = params.image_tag or defaults["image-tag"]
    digest = dict(params.image_digests or ()).get(step)
    return f"{registry}/receval-{step}:{tag}" + (f"@{digest}" if digest else "")


def run_defaults() -> PipelineParameters:
    """What ``receval run`` uses when given no options (:class:`receval.config.RunConfig`'s defaults).

    The single source of the pipeline's defaults: ``receval render`` writes these, and the shipped
    WorkflowTemplate and ConfigMap carry the same values (the test suite checks they agree).
    """
    from receval.config import RunConfig

    defaults = RunConfig()
    return PipelineParameters(
        dataset=defaults.dataset.name,
        shards=defaults.shards,
        algorithms=tuple(a.label for a in defaults.algorithms),  # type: ignore[misc]
        cutoffs=tuple(defaults.evaluation.cutoffs),
    )


def _template_defaults(template: Mapping[str, Any]) -> dict[str, str]:
    return {
        p["name"]: str(p["value"])
        for p in template["spec"].get("arguments", {}).get("parameters", [])
        if "value" in p
    }


def _set_namespace(doc: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    if namespace is not None:
        names.check_namespace(namespace)
    if namespace and doc.get("kind") not in ("Namespace", "PriorityClass", "ClusterWorkflowTemplate"):
        doc.setdefault("metadata", {})["namespace"] = namespace
    return doc


def workflow(
    params: PipelineParameters, *, namespace: str | None = None, template_name: str = TEMPLATE_NAME
) -> dict[str, Any]:
    """A Workflow that runs the WorkflowTemplate ``template_name`` with ``params``.

    Only the given parameters are passed, so the template's defaults stay the single source of the
    others. The run id is also a label, which is how ``receval status RUN`` finds the workflow, and
    it fixes the Workflow's name (:func:`workflow_name`): ``kubectl apply`` accepts the object, and a
    second submission of the same run id is refused (409) instead of writing into the same folder.
    Without a configuration (``config_uri``) the algorithms are registry names, checked here as
    ``receval run`` checks them, before anything reaches the cluster.
    """
    if params.run_id is None or params.store is None:
        raise ConfigError("submitting a run needs --run-id and --store (s3://bucket/prefix)")
    if params.config_uri is None and params.algorithms is not None:
        known_algorithms(params.algorithms)
    doc: dict[str, Any] = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "Workflow",
        "metadata": {
            "name": workflow_name(params.run_id),
            "labels": {APP_LABEL: "receval", RUN_ID_LABEL: params.run_id},
        },
        "spec": {
            "workflowTemplateRef": {"name": template_name},
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in params.arguments().items()]},
        },
    }
    return _set_namespace(doc, namespace)


def configured_workflow_template(
    params: PipelineParameters, *, namespace: str | None = None, parallelism: int | None = None
) -> dict[str, Any]:
    """The WorkflowTemplate with ``params`` as the parameters' defaults (for GitOps rendering)."""
    doc = copy.deepcopy(workflow_template())
    values = params.arguments()
    values.pop("run-id", None)  # a run id is per run, never a default
    for parameter in doc["spec"]["arguments"]["parameters"]:
        if parameter["name"] in values:
            parameter["value"] = values[parameter["name"]]
    if parallelism is not None:
        if parallelism < 1:
            raise ConfigError(f"--parallelism {parallelism}: must be at least 1")
        doc["spec"]["parallelism"] = parallelism
    return _set_namespace(doc, namespace)


def cronjob(
    schedule: NightlySchedule,
    params: PipelineParameters = PipelineParameters(),
    *,
    namespace: str | None = DEFAULT_NAMESPACE,
    suspend: bool = False,
) -> dict[str, Any]:
    """The nightly CronJob (``k8s/base/cronjob.yaml``) at ``schedule``, submitting with ``params``.

    The CronJob's pod reads its defaults from the receval-config ConfigMap; parameters given here
    become explicit ``receval submit`` options and win over the ConfigMap.
    """
    doc = copy.deepcopy(load_document("k8s/base/cronjob.yaml"))
    spec = doc["spec"]
    spec["schedule"] = schedule.cron
    spec["timeZone"] = schedule.timezone
    spec["suspend"] = suspend
    (container,) = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    if params.image_registry or params.image_tag:
        container["image"] = _image(params, "evaluate")
    for env in container.get("env", []):
        if env["name"] == "RECEVAL_TIMEZONE":
            env["value"] = schedule.timezone
    if params.run_id is not None:
        raise ConfigError("a schedule makes one run id per day (nightly-YYYYMMDD): do not give --run-id")
    container["args"] = ["submit", "--nightly"] + [
        f"--{name}={value}" for name, value in _submit_options(params).items()
    ]
    return _set_namespace(doc, namespace)


def _submit_options(params: PipelineParameters) -> dict[str, str]:
    options = params.arguments()
    # The CLI's spellings (--algorithm, --cutoff); the CLI takes a comma list, the template a JSON list.
    if "algorithms" in options:
        options.pop("algorithms")
        options["algorithm"] = ",".join(params.algorithms or ())
    if "cutoffs" in options:
        options["cutoff"] = options.pop("cutoffs")
    if "config-uri" in options:
        options["config"] = options.pop("config-uri")
    for step, digest in params.image_digests or ():  # one --image-digest STEP=DIGEST each
        options.pop(_digest_parameter(step))
    if params.image_digests:
        options["image-digest"] = ",".join(f"{step}={digest}" for step, digest in params.image_digests)
    return options


def cron_workflow(
    schedule: NightlySchedule,
    params: PipelineParameters = PipelineParameters(),
    *,
    namespace: str | None = DEFAULT_NAMESPACE,
    suspend: bool = False,
) -> dict[str, Any]:
    """The Argo CronWorkflow (``argo/cronworkflow.yaml``) at ``schedule`` with ``params``."""
    if params.run_id is not None:
        raise ConfigError("a schedule makes one run id per day (nightly-YYYYMMDD): do not give --run-id")
    doc = copy.deepcopy(load_document("argo/cronworkflow.yaml"))
    spec = doc["spec"]
    spec["schedules"] = [schedule.cron]
    spec["timezone"] = schedule.timezone
    spec["suspend"] = suspend
    parameters = spec["workflowSpec"]["arguments"]["parameters"]
    by_name = {p["name"]: p for p in parameters}
    for name, value in params.arguments().items():
        if name in by_name:
            by_name[name].pop("valueFrom", None)  # a given --store wins over the ConfigMap's
            by_name[name]["value"] = value
        else:
            parameters.append({"name": name, "value": value})
    return _set_namespace(doc, namespace)


def indexed_evaluate_job(
    params: PipelineParameters, algorithm: str, *, namespace: str | None = DEFAULT_NAMESPACE, parallelism: int = 4
) -> dict[str, Any]:
    """The evaluate fan-out of one algorithm as an Indexed Job (``k8s/indexed-job/evaluate-job.yaml``)."""
    if params.run_id is None or params.store is None:
        raise ConfigError("an Indexed Job is per run: give --run-id and --store")
    names.check_label(algorithm, "--algorithm")
    doc = copy.deepcopy(load_document("k8s/indexed-job/evaluate-job.yaml"))
    shards = params.shards or int(_template_defaults(workflow_template())["shards"])
    # A Job's name is also the job-name label of its pods: at most 63 characters.
    doc["metadata"]["name"] = names.object_name("receval-evaluate", params.run_id, algorithm)
    doc["metadata"]["labels"][RUN_ID_LABEL] = params.run_id
    spec = doc["spec"]
    spec["completions"] = shards
    spec["parallelism"] = min(parallelism, shards)
    (container,) = spec["template"]["spec"]["containers"]
    container["image"] = _image(params, "evaluate")
    container["args"] = [
        "evaluate", "--store", params.store, "--run-id", params.run_id, "--algorithm", algorithm,
        "--shard", "$(JOB_COMPLETION_INDEX)/$(SHARD_COUNT)",
    ]  # fmt: skip
    for env in container["env"]:
        if env["name"] == "SHARD_COUNT":
            env["value"] = str(shards)
    return _set_namespace(doc, namespace)


def configmap(params: PipelineParameters, *, namespace: str | None = DEFAULT_NAMESPACE) -> dict[str, Any]:
    """The receval-config ConfigMap with ``params`` as the nightly submission's values."""
    doc = copy.deepcopy(load_document("k8s/base/configmap.yaml"))
    keys = {
        "store": "RECEVAL_STORE", "dataset": "RECEVAL_DATASET", "config": "RECEVAL_CONFIG_URI",
        "shards": "RECEVAL_SHARDS", "algorithm": "RECEVAL_ALGORITHMS", "cutoff": "RECEVAL_CUTOFFS",
        "image-registry": "RECEVAL_IMAGE_REGISTRY", "image-tag": "RECEVAL_IMAGE_TAG",
        "gate-rules": "RECEVAL_GATE_RULES",
    }  # fmt: skip
    for name, value in _submit_options(params).items():
        if name in keys:
            doc["data"][keys[name]] = value
    return _set_namespace(doc, namespace)


@dataclass
class RenderedManifests:
    """What :func:`render` wrote: file paths in writing order."""

    files: list[Path] = field(default_factory=list)


def render(
    out_dir: str | Path,
    params: PipelineParameters,
    *,
    schedule: NightlySchedule | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    argo_cron: bool = False,
    indexed_jobs: bool = False,
    parallelism: int | None = None,
) -> RenderedManifests:
    """Write the manifests of a deployment with the user's parameters into ``out_dir`` (for GitOps).

    One file per object: namespace, accounts and roles, the ConfigMap, the WorkflowTemplate, the
    nightly schedule (CronJob, or CronWorkflow with ``argo_cron``), and with a ``run_id`` the
    Workflow of that run (plus, with ``indexed_jobs``, one evaluate Indexed Job per algorithm).
    The S3 Secret is never rendered: it must not land in a Git repository.
    """
    names.check_namespace(namespace)  # also a part of the file names below
    out = Path(out_dir)
    schedule = schedule or NightlySchedule()
    # Unset values take `receval run`'s defaults, written out so that the rendered files say them.
    defaults = run_defaults()
    filled = {k: v if v is not None else getattr(defaults, k) for k, v in params.__dict__.items()}
    if params.config_uri is not None:  # the configuration says which dataset; keep the template's fallback
        filled["dataset"] = params.dataset
    params = PipelineParameters(**filled)
    nightly = PipelineParameters(**{**params.__dict__, "run_id": None})
    documents: list[dict[str, Any]] = []
    documents += [_set_namespace(d, namespace) for d in load_documents("k8s/base/namespace.yaml")]
    documents[0]["metadata"]["name"] = namespace
    for name in ("serviceaccounts", "rbac"):
        documents += [_set_namespace(d, namespace) for d in load_documents(f"k8s/base/{name}.yaml")]
    documents.append(configmap(nightly, namespace=namespace))
    documents.append(configured_workflow_template(nightly, namespace=namespace, parallelism=parallelism))
    if argo_cron:
        documents.append(cron_workflow(schedule, nightly, namespace=namespace))
    else:
        documents.append(cronjob(schedule, PipelineParameters(), namespace=namespace))
    if params.run_id is not None:
        documents.append(workflow(params, namespace=namespace))
        if indexed_jobs:
            algorithms = params.algorithms or tuple(json.loads(_template_defaults(workflow_template())["algorithms"]))
            documents += [indexed_evaluate_job(params, a, namespace=namespace) for a in algorithms]
    result = RenderedManifests()
    out.mkdir(parents=True, exist_ok=True)
    for number, doc in enumerate(documents):
        name = doc["metadata"]["name"]  # every rendered object has a fixed name (kubectl apply needs one)
        path = out / f"{number:02d}-{doc['kind'].lower()}-{name}.yaml"
        path.write_text(dump_yaml([doc]), encoding="utf-8")
        result.files.append(path)
    return result
