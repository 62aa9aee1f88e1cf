"""``receval submit``, ``schedule``, ``status`` and ``render``: the pipeline on a Kubernetes cluster with Argo.

Every option of ``submit`` also reads an environment variable (``RECEVAL_STORE``, ...), which is how the
nightly CronJob passes the receval-config ConfigMap to it.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

import typer

from receval.cli._common import algorithm_option, cutoff_option, speaks_flags, split_list

_KUBE = "Cluster connection"
_PIPE = "Pipeline parameters"


def _kube_options() -> dict[str, Any]:
    return {
        "kubeconfig": typer.Option(None, "--kubeconfig", envvar="KUBECONFIG", help="kubeconfig file (default ~/.kube/config, or the pod's service account in a cluster).", rich_help_panel=_KUBE),
        "context": typer.Option(None, "--context", help="kubeconfig context (default: its current context).", rich_help_panel=_KUBE),
        "namespace": typer.Option(None, "--namespace", "-n", envvar="RECEVAL_NAMESPACE", help="Namespace of the receval objects (default: the context's, else receval).", rich_help_panel=_KUBE),
    }  # fmt: skip


def _params(**values: Any) -> Any:
    from receval.cluster.manifests import PipelineParameters

    # --algorithm and --cutoff repeat and take comma lists, as in every other command
    for name in ("algorithms", "cutoffs"):
        if isinstance(values.get(name), (list, tuple)):
            values[name] = ",".join(split_list(values[name])) or None
    return PipelineParameters.from_text(**values)


def _client(kubeconfig: str | None, context: str | None, namespace: str | None) -> Any:
    from receval.cluster.client import ClusterClient

    return ClusterClient(kubeconfig=kubeconfig, context=context, namespace=namespace)


def _today_run_id() -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        zone = ZoneInfo(os.environ.get("RECEVAL_TIMEZONE") or "Etc/UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("Etc/UTC")
    return f"nightly-{dt.datetime.now(zone):%Y%m%d}"


def _manual_run_id() -> str:
    """A run id of its own for a submission by hand: never a nightly's folder."""
    return f"manual-{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}"


def _store_status(store_uri: str, run: str) -> str:
    """What the store says about ``run``, read as ``receval results`` reads it (:mod:`receval.results.read`:
    the keys are the layout's, a run is complete only with its marker)."""
    from receval.errors import StoreError
    from receval.pipeline import layout
    from receval.results.read import read_run_info
    from receval.storage import open_store

    try:
        info = read_run_info(open_store(store_uri), run)
    except StoreError as exc:
        return f"store: {store_uri}: cannot read run {run}: {exc}"
    if info.reported_status is None:
        return f"store: {store_uri} has no {layout.run_json_key(run)} yet"
    details = [f"status {info.reported_status}" + ("" if info.status == info.reported_status else f" ({info.status})")]
    details += [f"{name} {when.isoformat()}" for name, when in (("created", info.created), ("finished", info.finished))
                if when is not None]
    if info.failure:
        details.append(f"failure {info.failure}")
    return f"store: run {run}: {', '.join(details)}"


def _progress_table(workflow: dict[str, Any]) -> Any:
    from rich.table import Table

    from receval.cluster.client import step_progress

    phase = workflow.get("status", {}).get("phase") or "Pending"
    table = Table(title=f"{workflow['metadata']['name']}  [bold]{phase}[/bold]", title_justify="left")
    for column in ("step", "done", "running", "failed", "pending"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for p in step_progress(workflow):
        table.add_row(p.step, f"{p.succeeded}/{p.total}", str(p.running), str(p.failed), str(p.pending))
    return table


def register(app: typer.Typer) -> None:
    kube = _kube_options()

    @app.command(
        "submit",
        epilog=(
            "Examples:\n\n"
            "  receval submit --store s3://evals/receval --run-id ml100k-trial --algorithm pop,ub --shards 16\n\n"
            "  receval submit --store s3://evals/receval --watch\n\n"
            "  receval submit --store s3://evals/receval --run-id r1 --dry-run > workflow.yaml"
        ),
    )
    @speaks_flags
    def submit(
        store: str = typer.Option(None, "--store", envvar="RECEVAL_STORE", help="s3://bucket/prefix where run folders live.", rich_help_panel=_PIPE),
        run_id: str = typer.Option(None, "--run-id", envvar="RECEVAL_RUN_ID", help="Run folder name (default manual-YYYYMMDD-HHMMSS, UTC; with --nightly nightly-YYYYMMDD).", rich_help_panel=_PIPE),
        nightly: bool = typer.Option(False, "--nightly", help="The scheduled run (the CronJob passes it): run id nightly-YYYYMMDD, today in $RECEVAL_TIMEZONE or UTC; a second submission the same night does nothing.", rich_help_panel=_PIPE),
        dataset: str = typer.Option(None, "--dataset", envvar="RECEVAL_DATASET", help="Built-in dataset (used when --config is not given).", rich_help_panel=_PIPE),
        config: str = typer.Option(None, "--config", envvar="RECEVAL_CONFIG_URI", help="Run configuration URI, read by prepare.", rich_help_panel=_PIPE),
        shards: int = typer.Option(None, "--shards", envvar="RECEVAL_SHARDS", help="User shards of the predict/evaluate fan-outs.", rich_help_panel=_PIPE),
        algorithms: list[str] = algorithm_option("Algorithms, e.g. pop,ub", envvar="RECEVAL_ALGORITHMS", rich_help_panel=_PIPE),
        cutoffs: list[str] = cutoff_option(envvar="RECEVAL_CUTOFFS", rich_help_panel=_PIPE),
        image_registry: str = typer.Option(None, "--image-registry", envvar="RECEVAL_IMAGE_REGISTRY", help="Registry/namespace of the receval images.", rich_help_panel=_PIPE),
        image_tag: str = typer.Option(None, "--image-tag", envvar="RECEVAL_IMAGE_TAG", help="Tag of the receval images.", rich_help_panel=_PIPE),
        image_digest: list[str] = typer.Option(None, "--image-digest", envvar="RECEVAL_IMAGE_DIGEST", help="STEP=sha256:HEX (repeatable, or comma-separated): pull that step's image by digest.", rich_help_panel=_PIPE),
        gate_rules: str = typer.Option(None, "--gate-rules", envvar="RECEVAL_GATE_RULES", help="Regression gate after aggregate: ';'-separated rules, e.g. 'ndcg@10: drop <= 0.005 at p < 0.05' (empty: none).", rich_help_panel=_PIPE),
        template: str = typer.Option("receval-pipeline", "--template", envvar="RECEVAL_WORKFLOW_TEMPLATE", help="WorkflowTemplate to run."),
        watch: bool = typer.Option(False, "--watch", "-w", help="Follow the run's steps live until it finishes."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the Workflow YAML instead of creating it."),
        poll_seconds: float = typer.Option(5.0, "--poll-seconds", hidden=True),
        kubeconfig: str = kube["kubeconfig"],
        context: str = kube["context"],
        namespace: str = kube["namespace"],
    ) -> None:
        """Start a pipeline run on the cluster: a Workflow from the receval-pipeline WorkflowTemplate.

        Prints the Workflow's name. Parameters not given keep the WorkflowTemplate's defaults.
        """
        from receval.cluster import manifests
        from receval.cluster.client import AlreadyExistsError
        from receval.errors import ClusterError, ConfigError

        if nightly and run_id:
            raise ConfigError("--nightly makes the run id (nightly-YYYYMMDD): do not give --run-id as well")
        params = _params(
            run_id=run_id or (_today_run_id() if nightly else _manual_run_id()), store=store, dataset=dataset,
            config_uri=config, shards=shards, algorithms=algorithms, cutoffs=cutoffs, image_registry=image_registry,
            image_tag=image_tag, image_digests=image_digest,
            gate_rules=gate_rules,
        )  # fmt: skip
        workflow = manifests.workflow(params, namespace=namespace, template_name=template)
        if dry_run:
            typer.echo(manifests.dump_yaml([workflow]), nl=False)
            return
        client = _client(kubeconfig, context, namespace)
        try:
            name = client.submit(workflow)
        except AlreadyExistsError:
            name = workflow["metadata"]["name"]
            if not nightly:
                raise ClusterError(
                    f"run {params.run_id} was submitted before (Workflow {name} exists in namespace "
                    f"{client.namespace}): pick another --run-id, or delete that Workflow to run it again "
                    f"(argo delete {name}); its run folder is reused, finished steps are skipped"
                ) from None
            # A retried CronJob pod, or a second scheduler, the same night: the run exists already.
            typer.echo(f"{name} (already submitted for run {params.run_id}: nothing to do)")
            return
        typer.echo(name)
        if not watch:
            return
        from rich.console import Console
        from rich.live import Live

        from receval.cluster.client import FINISHED_PHASES

        console = Console(stderr=True)
        current = client.get_workflow(name)
        with Live(_progress_table(current), console=console, refresh_per_second=2, transient=False) as live:
            while current.get("status", {}).get("phase") not in FINISHED_PHASES:
                time.sleep(poll_seconds)
                current = client.get_workflow(name)
                live.update(_progress_table(current))
        console.line()  # the error or the shell prompt starts on a fresh line
        phase = current["status"]["phase"]
        if phase != "Succeeded":
            message = current["status"].get("message") or "see: argo logs " + name
            raise ClusterError(f"workflow {name} ended {phase}: {message}")

    @app.command(
        "schedule",
        epilog=(
            "Examples:\n\n"
            "  receval schedule --at 02:30 --timezone Europe/Madrid\n\n"
            "  receval schedule --suspend          (pause the nightly run)\n\n"
            "  receval schedule --argo-cron --at 03:00 --store s3://evals/receval\n\n"
            "  receval schedule --delete"
        ),
    )
    @speaks_flags
    def schedule(
        at: str = typer.Option(None, "--at", help="Daily start time HH:MM (24-hour clock); default 02:30 when creating."),
        timezone: str = typer.Option("Etc/UTC", "--timezone", help="IANA time zone of --at, e.g. Europe/Madrid."),
        suspend: bool = typer.Option(False, "--suspend", help="Pause the schedule (keeps it)."),
        resume: bool = typer.Option(False, "--resume", help="Resume a paused schedule."),
        delete: bool = typer.Option(False, "--delete", help="Remove the schedule."),
        argo_cron: bool = typer.Option(False, "--argo-cron", help="Use an Argo CronWorkflow instead of a Kubernetes CronJob."),
        store: str = typer.Option(None, "--store", help="s3://bucket/prefix (default: the receval-config ConfigMap / template).", rich_help_panel=_PIPE),
        dataset: str = typer.Option(None, "--dataset", rich_help_panel=_PIPE),
        config: str = typer.Option(None, "--config", rich_help_panel=_PIPE),
        shards: int = typer.Option(None, "--shards", rich_help_panel=_PIPE),
        algorithms: list[str] = algorithm_option(rich_help_panel=_PIPE),
        cutoffs: list[str] = cutoff_option(rich_help_panel=_PIPE),
        image_registry: str = typer.Option(None, "--image-registry", rich_help_panel=_PIPE),
        image_tag: str = typer.Option(None, "--image-tag", rich_help_panel=_PIPE),
        image_digest: list[str] = typer.Option(None, "--image-digest", help="STEP=sha256:HEX (repeatable).", rich_help_panel=_PIPE),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the CronJob (or CronWorkflow) YAML instead of applying it."),
        kubeconfig: str = kube["kubeconfig"],
        context: str = kube["context"],
        namespace: str = kube["namespace"],
    ) -> None:
        """Create or update the nightly run (idempotent: creates it, or patches the existing one).

        One scheduler at a time: creating, updating or resuming the CronJob suspends the Argo
        CronWorkflow receval-nightly if it is active, and --argo-cron suspends the CronJob.

        The CronJob receval-nightly runs `receval submit` every day at --at with run id
        nightly-YYYYMMDD; with --argo-cron, the CronWorkflow receval-nightly does the same inside Argo.
        """
        from receval.cluster import manifests
        from receval.errors import ConfigError

        if sum((suspend, resume, delete)) > 1:
            raise ConfigError("give at most one of --suspend, --resume, --delete")
        kind = "CronWorkflow" if argo_cron else "CronJob"
        name = manifests.CRONJOB_NAME
        given_params = any(
            v is not None for v in (store, dataset, config, shards, algorithms, cutoffs, image_registry, image_tag)
        ) or bool(image_digest)
        if (delete or ((suspend or resume) and at is None)) and given_params:
            raise ConfigError("pipeline options need --at: they rewrite the schedule")
        # Check every option before talking to the cluster.
        nightly = manifests.NightlySchedule(at=at or "02:30", timezone=timezone)
        params = _params(
            store=store, dataset=dataset, config_uri=config, shards=shards, algorithms=algorithms, cutoffs=cutoffs,
            image_registry=image_registry, image_tag=image_tag, image_digests=image_digest,
        )  # fmt: skip
        build = manifests.cron_workflow if argo_cron else manifests.cronjob
        if dry_run:
            if delete or ((suspend or resume) and at is None):
                raise ConfigError("--dry-run prints the schedule it would apply: give --at (not with --delete)")
            body = build(nightly, params, namespace=namespace or manifests.DEFAULT_NAMESPACE, suspend=suspend)
            typer.echo(manifests.dump_yaml([body]), nl=False)
            return
        client = _client(kubeconfig, context, namespace)
        if delete:
            deleted = client.delete_cron_workflow(name) if argo_cron else client.delete_cronjob(name)
            typer.echo(f"{kind} {client.namespace}/{name} {'deleted' if deleted else 'did not exist'}")
            return
        switched = False
        if not suspend:
            # Before this one becomes active: two active schedulers would start two runs a night.
            other, other_active, suspend_other = (
                ("CronJob", client.cronjob_active, client.suspend_cronjob)
                if argo_cron
                else ("CronWorkflow", client.cron_workflow_active, client.suspend_cron_workflow)
            )
            switched = bool(other_active(name))  # then the scheduler chosen now must run, not stay paused
            if switched:
                suspend_other(name, True)
                typer.echo(f"{other} {client.namespace}/{name} suspended: one scheduler at a time")
        if (suspend or resume) and at is None:
            (client.suspend_cron_workflow if argo_cron else client.suspend_cronjob)(name, suspend)
            typer.echo(f"{kind} {client.namespace}/{name} {'suspended' if suspend else 'resumed'}")
            return
        body = build(nightly, params, namespace=client.namespace, suspend=suspend)
        apply = client.apply_cron_workflow if argo_cron else client.apply_cronjob
        outcome = apply(body, keep_suspend=not (suspend or resume or switched))
        state = " (suspended)" if suspend else ""
        typer.echo(f"{kind} {client.namespace}/{name} {outcome}: daily at {nightly.at} {nightly.timezone} ({nightly.cron}){state}")

    @app.command(
        "status",
        epilog=(
            "Examples:\n\n"
            "  receval status                                  (the newest run)\n\n"
            "  receval status nightly-20240501 --store s3://evals/receval"
        ),
    )
    def status(
        run: str = typer.Argument(None, help="Run id (default: the newest receval workflow)."),
        store: str = typer.Option(None, "--store", envvar="RECEVAL_STORE", help="Also show what the store says (runs/RUN/run.json)."),
        kubeconfig: str = kube["kubeconfig"],
        context: str = kube["context"],
        namespace: str = kube["namespace"],
    ) -> None:
        """A run's workflow phase and per-step progress, joined with the run's status in the store."""
        from rich.console import Console

        from receval.errors import ClusterError

        client = _client(kubeconfig, context, namespace)
        workflow = client.latest_workflow(run)
        console = Console()
        if workflow is None:
            console.print(f"workflow: none found for run {run or '(any)'} in namespace {client.namespace}")
        else:
            run = run or workflow["metadata"].get("labels", {}).get("receval.io/run-id")
            console.print(_progress_table(workflow))
            message = workflow.get("status", {}).get("message")
            if message:
                console.print(f"message: {message}")
        if store and run:
            typer.echo(_store_status(store, run))
        if workflow is None and not store:
            raise ClusterError(f"no receval workflow for run {run or '(any)'} in namespace {client.namespace}; check --namespace")

    @app.command(
        "render",
        epilog=(
            "Examples:\n\n"
            "  receval render --out deploy/ --store s3://evals/receval --algorithm pop,ub --at 03:00\n\n"
            "  receval render --out deploy/ --argo-cron --namespace ml-eval\n\n"
            "  receval render --out run/ --run-id r1 --store s3://evals/receval --indexed-jobs"
        ),
    )
    @speaks_flags
    def render(
        out: str = typer.Option(..., "--out", "-o", help="Folder to write the manifests into (one file per object)."),
        store: str = typer.Option(None, "--store", rich_help_panel=_PIPE),
        run_id: str = typer.Option(None, "--run-id", help="Also render the Workflow of this run.", rich_help_panel=_PIPE),
        dataset: str = typer.Option(None, "--dataset", rich_help_panel=_PIPE),
        config: str = typer.Option(None, "--config", rich_help_panel=_PIPE),
        shards: int = typer.Option(None, "--shards", rich_help_panel=_PIPE),
        algorithms: list[str] = algorithm_option(rich_help_panel=_PIPE),
        cutoffs: list[str] = cutoff_option(rich_help_panel=_PIPE),
        image_registry: str = typer.Option(None, "--image-registry", rich_help_panel=_PIPE),
        image_tag: str = typer.Option(None, "--image-tag", rich_help_panel=_PIPE),
        image_digest: list[str] = typer.Option(None, "--image-digest", help="STEP=sha256:HEX (repeatable).", rich_help_panel=_PIPE),
        at: str = typer.Option("02:30", "--at", help="Daily start time HH:MM."),
        timezone: str = typer.Option("Etc/UTC", "--timezone", help="IANA time zone of --at."),
        argo_cron: bool = typer.Option(False, "--argo-cron", help="Schedule with an Argo CronWorkflow instead of a CronJob."),
        indexed_jobs: bool = typer.Option(False, "--indexed-jobs", help="With --run-id: also the evaluate Indexed Jobs (clusters without Argo)."),
        parallelism: int = typer.Option(None, "--parallelism", help="Most pods of one run at a time."),
        namespace: str = typer.Option("receval", "--namespace", "-n", help="Namespace of every object."),
    ) -> None:
        """Write the deployment's manifests with your parameters into a folder, for GitOps (no cluster needed).

        Options not given take `receval run`'s defaults. With --run-id the run's Workflow has a fixed
        name (kubectl apply works; applying it again changes nothing). The S3 Secret is never
        rendered; create it from your secret manager.
        """
        from receval.cluster import manifests

        params = _params(
            run_id=run_id, store=store, dataset=dataset, config_uri=config, shards=shards, algorithms=algorithms,
            cutoffs=cutoffs, image_registry=image_registry, image_tag=image_tag, image_digests=image_digest,
        )  # fmt: skip
        rendered = manifests.render(
            out, params, schedule=manifests.NightlySchedule(at=at, timezone=timezone), namespace=namespace,
            argo_cron=argo_cron, indexed_jobs=indexed_jobs, parallelism=parallelism,
        )  # fmt: skip
        for path in rendered.files:
            typer.echo(str(path))
